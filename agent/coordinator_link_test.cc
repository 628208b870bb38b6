// CoordinatorLink's Enlist batching against an in-process Coordinator
// service: a lone Enlist goes alone; Enlists that wait behind ones in flight
// go as one EnlistBatch, each caller getting its own answer; a coordinator
// without EnlistBatch gets them one by one.
#include "agent/coordinator_link.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/txid.h"
#include "gtest/gtest.h"
#include "harness/call_gate.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {
namespace {

// Refuses txids ending in "x" (FAILED_PRECONDITION); its gate records and
// can hold calls.
class FakeCoordinator : public v1::Coordinator::Service, public txcoord::testing::CallGate {
 public:
  grpc::Status Enlist(grpc::ServerContext*, const v1::EnlistRequest* request,
                      v1::EnlistResponse*) override {
    Arrive("Enlist " + request->txid());
    Count(*request);
    return StatusFor(*request);
  }

  // Enlistments received with and without EnlistRequest.named_in_commit.
  std::atomic<int> marked{0};
  std::atomic<int> unmarked{0};

 protected:
  void Count(const v1::EnlistRequest& request) {
    ++(request.named_in_commit() ? marked : unmarked);
  }
  static grpc::Status StatusFor(const v1::EnlistRequest& request) {
    if (absl::EndsWith(request.txid(), "x")) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "transaction " + request.txid() + " is not ACTIVE");
    }
    if (request.participant() != "svc" || request.endpoint() != "svc.local:7171") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wrong participant or endpoint");
    }
    return grpc::Status::OK;
  }
};

class BatchingCoordinator final : public FakeCoordinator {
 public:
  grpc::Status EnlistBatch(grpc::ServerContext*, const v1::EnlistBatchRequest* request,
                           v1::EnlistBatchResponse* response) override {
    Arrive(absl::StrCat("EnlistBatch ", request->enlistments_size()));
    for (const v1::EnlistRequest& enlistment : request->enlistments()) {
      Count(enlistment);
      SetAnswerStatus(FromGrpcStatus(StatusFor(enlistment)), response->add_answers());
    }
    return grpc::Status::OK;
  }
};

// Answers every OK enlistment with the key "key-<epoch of its txid>", as a
// coordinator of that epoch would give its own.
class KeyingCoordinator final : public FakeCoordinator {
 public:
  grpc::Status Enlist(grpc::ServerContext* context, const v1::EnlistRequest* request,
                      v1::EnlistResponse* response) override {
    grpc::Status status = FakeCoordinator::Enlist(context, request, response);
    if (status.ok()) response->set_vote_key(KeyFor(request->txid()));
    return status;
  }
  grpc::Status EnlistBatch(grpc::ServerContext*, const v1::EnlistBatchRequest* request,
                           v1::EnlistBatchResponse* response) override {
    Arrive(absl::StrCat("EnlistBatch ", request->enlistments_size()));
    for (const v1::EnlistRequest& enlistment : request->enlistments()) {
      v1::EnlistBatchResponse::Answer* answer = response->add_answers();
      const grpc::Status status = StatusFor(enlistment);
      SetAnswerStatus(FromGrpcStatus(status), answer);
      if (status.ok()) answer->set_vote_key(KeyFor(enlistment.txid()));
    }
    return grpc::Status::OK;
  }
  static std::string KeyFor(const std::string& txid) {
    return "key-" + std::to_string(ParseTxid(txid)->epoch);
  }
};

class CoordinatorLinkTest : public ::testing::Test {
 protected:
  void Start(v1::Coordinator::Service* service) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    link_ =
        std::make_unique<CoordinatorLink>(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                              grpc::InsecureChannelCredentials()),
                                          "svc", absl::Seconds(10));
    link_->set_endpoint("svc.local:7171");
  }
  void TearDown() override {
    for (std::thread& t : threads_) t.join();
    if (server_) server_->Shutdown();
  }
  // Enlists `txid` on a thread of its own; the result lands in *out.
  void EnlistOnAThread(const std::string& txid, absl::Status* out) {
    threads_.emplace_back([this, txid, out] { *out = link_->Enlist(txid, 1, false); });
  }
  // Two Enlists held at the coordinator fill both slots; then `txids`
  // queue behind them; then everything is released and answered.
  std::vector<absl::Status> EnlistBehindTwoHeld(FakeCoordinator& coordinator,
                                                const std::vector<std::string>& txids) {
    coordinator.Hold();
    absl::Status first, second;
    EnlistOnAThread("c.1.100", &first);
    EnlistOnAThread("c.1.101", &second);
    coordinator.WaitForCalls(2);
    std::vector<absl::Status> results(txids.size());
    for (size_t i = 0; i < txids.size(); ++i) EnlistOnAThread(txids[i], &results[i]);
    while (link_->waiting() < txids.size()) std::this_thread::yield();
    coordinator.Release();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    EXPECT_TRUE(first.ok()) << first;
    EXPECT_TRUE(second.ok()) << second;
    return results;
  }

  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CoordinatorLink> link_;
  std::vector<std::thread> threads_;
};

TEST_F(CoordinatorLinkTest, LoneEnlistGoesAlone) {
  BatchingCoordinator coordinator;
  Start(&coordinator);
  EXPECT_TRUE(link_->Enlist("c.1.1", 1, false).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(link_->Enlist("c.1.2x", 1, false)));
  EXPECT_EQ(coordinator.calls(), (std::vector<std::string>{"Enlist c.1.1", "Enlist c.1.2x"}));
  EXPECT_EQ(link_->batches_sent(), 0);
}

TEST_F(CoordinatorLinkTest, EnlistsWaitingBehindBusySlotsGoAsOneBatchWithTheirOwnAnswers) {
  BatchingCoordinator coordinator;
  Start(&coordinator);
  const std::vector<std::string> txids = {"c.1.1", "c.1.2x", "c.1.3", "c.1.4x", "c.1.5"};
  std::vector<absl::Status> results = EnlistBehindTwoHeld(coordinator, txids);
  for (size_t i = 0; i < txids.size(); ++i) {
    EXPECT_EQ(results[i].ok(), !absl::EndsWith(txids[i], "x")) << txids[i] << ": " << results[i];
    if (!results[i].ok()) {
      EXPECT_TRUE(absl::IsFailedPrecondition(results[i])) << results[i];
      EXPECT_TRUE(absl::StrContains(results[i].message(), txids[i])) << results[i];
    }
  }
  const std::vector<std::string> calls = coordinator.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "EnlistBatch 5"), 1);
  EXPECT_EQ(calls.size(), 3u);
  EXPECT_EQ(link_->batches_sent(), 1);
  EXPECT_EQ(link_->batched_enlistments(), 5);
}

TEST_F(CoordinatorLinkTest, CoordinatorWithoutEnlistBatchGetsSingleEnlists) {
  FakeCoordinator coordinator;  // EnlistBatch: UNIMPLEMENTED
  Start(&coordinator);
  const std::vector<std::string> txids = {"c.1.1", "c.1.2x", "c.1.3"};
  std::vector<absl::Status> results = EnlistBehindTwoHeld(coordinator, txids);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_TRUE(absl::IsFailedPrecondition(results[1])) << results[1];
  EXPECT_TRUE(results[2].ok()) << results[2];
  const std::vector<std::string> calls = coordinator.calls();
  for (const std::string& txid : txids) {
    EXPECT_EQ(std::count(calls.begin(), calls.end(), "Enlist " + txid), 1) << txid;
  }
  // For a while every later Enlist goes alone, without trying a batch.
  EXPECT_TRUE(link_->Enlist("c.1.9", 1, false).ok());
  EXPECT_EQ(link_->batches_sent(), 1);
}

TEST_F(CoordinatorLinkTest, AsyncEnlistsQueuedBehindAStallGoInBatchesNoLargerThanTheCap) {
  BatchingCoordinator coordinator;
  Start(&coordinator);
  coordinator.Hold();
  const size_t queued = CoordinatorLink::kMaxEnlistBatch + 3;
  const size_t total = queued + CoordinatorLink::kMaxEnlistsInFlight;
  absl::BlockingCounter answered(static_cast<int>(total));
  absl::Mutex mu;
  std::vector<std::pair<std::string, absl::Status>> results;
  auto enlist = [&](const std::string& txid) {
    link_->EnlistAsync(txid, 1, false, [&, txid](absl::Status status) {
      {
        absl::MutexLock lock(&mu);
        results.emplace_back(txid, std::move(status));
      }
      answered.DecrementCount();
    });
  };
  for (int i = 0; i < CoordinatorLink::kMaxEnlistsInFlight; ++i) {
    enlist(absl::StrCat("c.1.", 1000 + i));
  }
  coordinator.WaitForCalls(CoordinatorLink::kMaxEnlistsInFlight);
  // Queued as they return: both slots are held.
  for (size_t i = 0; i < queued; ++i) enlist(absl::StrCat("c.1.", i, i % 7 == 0 ? "x" : ""));
  coordinator.Release();
  answered.Wait();
  ASSERT_EQ(results.size(), total);
  for (const auto& [txid, status] : results) {
    EXPECT_EQ(status.ok(), !absl::EndsWith(txid, "x")) << txid << ": " << status;
  }
  const std::vector<std::string> calls = coordinator.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(),
                       absl::StrCat("EnlistBatch ", CoordinatorLink::kMaxEnlistBatch)),
            1);
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "EnlistBatch 3"), 1);
  EXPECT_EQ(link_->batched_enlistments(), static_cast<int64_t>(queued));
}

// A clean stop waits for the last votes' answers: AwaitAsyncEnlists holds
// until every asynchronous enlistment, the queued ones too, is answered.
TEST_F(CoordinatorLinkTest, AwaitAsyncEnlistsReturnsOnceEveryAsyncEnlistIsAnswered) {
  BatchingCoordinator coordinator;
  Start(&coordinator);
  EXPECT_TRUE(link_->AwaitAsyncEnlists(absl::Now())) << "nothing sent yet";
  coordinator.Hold();
  std::atomic<int> answered{0};
  const int total = CoordinatorLink::kMaxEnlistsInFlight + 3;
  for (int i = 0; i < total; ++i) {
    link_->EnlistAsync(absl::StrCat("c.1.", 200 + i), 1, true,
                       [&answered](const absl::Status& status) {
                         EXPECT_TRUE(status.ok()) << status;
                         ++answered;
                       });
  }
  coordinator.WaitForCalls(CoordinatorLink::kMaxEnlistsInFlight);
  EXPECT_FALSE(link_->AwaitAsyncEnlists(absl::Now() + absl::Milliseconds(50)))
      << "answered while the coordinator holds every call";
  EXPECT_EQ(answered.load(), 0);
  coordinator.Release();
  EXPECT_TRUE(link_->AwaitAsyncEnlists(absl::InfiniteFuture()));
  EXPECT_EQ(answered.load(), total);
}

// Only a named Execute enlists without waiting, and the coordinator must
// know it: a Commit that leaves such a branch out aborts, where it keeps an
// unmarked one (docs/protocol.md, "Naming the branches in Commit").
TEST_F(CoordinatorLinkTest, TheAsyncEnlistAloneIsMarkedNamedInCommit) {
  BatchingCoordinator coordinator;
  Start(&coordinator);
  ASSERT_TRUE(link_->Enlist("c.1.1", 1, false).ok());
  EXPECT_EQ(coordinator.unmarked.load(), 1);
  EXPECT_EQ(coordinator.marked.load(), 0);
  absl::Notification answered;
  absl::Status status;
  link_->EnlistAsync("c.1.2", 1, true, [&](absl::Status s) {
    status = std::move(s);
    answered.Notify();
  });
  answered.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(coordinator.marked.load(), 1);
  EXPECT_EQ(coordinator.unmarked.load(), 1);
}

// The key of an OK answer signs for txids of that txid's cluster and epoch
// only (docs/protocol.md, "Signed votes"), whichever way the answer came.
TEST_F(CoordinatorLinkTest, AVoteKeyFromAnAnswerSignsForItsTxidsClusterAndEpochOnly) {
  KeyingCoordinator coordinator;
  Start(&coordinator);
  EXPECT_FALSE(link_->VoteSigningFor("c.1.5").has_value());
  ASSERT_TRUE(link_->Enlist("c.1.1", 1, true).ok());
  std::optional<Enlister::VoteSigning> signing = link_->VoteSigningFor("c.1.5");
  ASSERT_TRUE(signing.has_value());
  EXPECT_EQ(signing->key, "key-1");
  EXPECT_EQ(signing->endpoint, "svc.local:7171");
  EXPECT_FALSE(link_->VoteSigningFor("c.2.5").has_value());  // another epoch
  EXPECT_FALSE(link_->VoteSigningFor("d.1.5").has_value());  // another cluster
  EXPECT_FALSE(link_->VoteSigningFor("not a txid").has_value());
  // A refusal brings no key and keeps the one held.
  EXPECT_FALSE(link_->Enlist("c.2.1x", 1, true).ok());
  EXPECT_FALSE(link_->VoteSigningFor("c.2.5").has_value());
  EXPECT_EQ(link_->VoteSigningFor("c.1.6")->key, "key-1");
  // The asynchronous path: a later epoch's key replaces the earlier one.
  absl::Notification answered;
  link_->EnlistAsync("c.2.3", 1, true, [&](absl::Status) { answered.Notify(); });
  answered.WaitForNotification();
  EXPECT_EQ(link_->VoteSigningFor("c.2.5")->key, "key-2");
  EXPECT_FALSE(link_->VoteSigningFor("c.1.6").has_value());
}

}  // namespace
}  // namespace txcoord::participant
