// GrpcParticipantTransport under BatchingParticipantClient, as the daemon
// runs them, against an in-process Participant service: single calls while
// the participant is idle, one Batch for what queued behind a busy one,
// each entry answered as its own call would be, and single calls again for
// a participant that does not know Batch. The batching itself is tested
// over a fake transport in batching_participant_client_test.
#include "coordinator/grpc_participant_transport.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/scheduler.h"
#include "coordinator/batching_participant_client.h"
#include "gtest/gtest.h"
#include "harness/call_gate.h"
#include "rpc/grpc_util.h"

namespace txcoord::coordinator {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

// Votes YES for txids ending in "y", READ_ONLY for "r", NO otherwise;
// commits fail for txids ending in "f". Its gate records calls, each as
// "<Method> <txid>" or "Batch <n>", and can hold them until released.
class FakeParticipant : public v1::Participant::Service, public txcoord::testing::CallGate {
 public:
  grpc::Status Prepare(grpc::ServerContext*, const v1::PrepareRequest* request,
                       v1::PrepareResponse* response) override {
    Arrive("Prepare " + request->txid());
    response->set_vote(VoteFor(request->txid()));
    if (response->vote() == v1::VOTE_NO) response->set_reason("unknown branch");
    return grpc::Status::OK;
  }
  grpc::Status Commit(grpc::ServerContext*, const v1::BranchRequest* request,
                      v1::BranchResponse*) override {
    Arrive("Commit " + request->txid());
    return CommitStatus(request->txid());
  }
  grpc::Status Abort(grpc::ServerContext*, const v1::BranchRequest* request,
                     v1::BranchResponse*) override {
    Arrive("Abort " + request->txid());
    return grpc::Status::OK;
  }
  // Commits txids ending in "y", aborts the others.
  grpc::Status CommitOnePhase(grpc::ServerContext*, const v1::BranchRequest* request,
                              v1::CommitOnePhaseResponse* response) override {
    Arrive("CommitOnePhase " + request->txid());
    response->set_outcome(absl::EndsWith(request->txid(), "y") ? v1::OUTCOME_COMMITTED
                                                               : v1::OUTCOME_ABORTED);
    return grpc::Status::OK;
  }

 protected:
  static v1::Vote VoteFor(const std::string& txid) {
    if (absl::EndsWith(txid, "y")) return v1::VOTE_YES;
    if (absl::EndsWith(txid, "r")) return v1::VOTE_READ_ONLY;
    return v1::VOTE_NO;
  }
  static grpc::Status CommitStatus(const std::string& txid) {
    if (absl::EndsWith(txid, "f")) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "HEURISTIC_MIXED: " + txid);
    }
    return grpc::Status::OK;
  }
};

class BatchingParticipant final : public FakeParticipant {
 public:
  grpc::Status Batch(grpc::ServerContext*, const v1::BatchRequest* request,
                     v1::BatchResponse* response) override {
    Arrive(absl::StrCat("Batch ", request->entries_size()));
    for (const v1::BatchRequest::Entry& entry : request->entries()) {
      v1::BatchResponse::Answer* answer = response->add_answers();
      switch (entry.kind()) {
        case v1::BatchRequest::KIND_PREPARE:
          answer->set_vote(VoteFor(entry.txid()));
          if (answer->vote() == v1::VOTE_NO) answer->set_reason("unknown branch");
          break;
        case v1::BatchRequest::KIND_COMMIT:
          SetAnswerStatus(FromGrpcStatus(CommitStatus(entry.txid())), answer);
          break;
        default:
          break;
      }
    }
    return grpc::Status::OK;
  }
};

// Answers a Batch with one answer fewer than it has entries.
class ShortBatchParticipant final : public FakeParticipant {
 public:
  grpc::Status Batch(grpc::ServerContext*, const v1::BatchRequest* request,
                     v1::BatchResponse* response) override {
    Arrive(absl::StrCat("Batch ", request->entries_size()));
    for (int i = 1; i < request->entries_size(); ++i) response->add_answers();
    return grpc::Status::OK;
  }
};

// What one call's callback received, once it has.
struct Result {
  absl::Notification done;
  absl::StatusOr<Vote> vote = absl::UnknownError("not answered");
  absl::Status status = absl::UnknownError("not answered");
};

class GrpcParticipantTransportTest : public ::testing::Test {
 protected:
  void Start(v1::Participant::Service* service,
             absl::Duration singles_after_unimplemented = absl::Minutes(1)) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    branch_ = BranchRef{"p", "127.0.0.1:" + std::to_string(port), 7};
    transport_ = std::make_unique<GrpcParticipantTransport>(nullptr);
    BatchingOptions options;
    options.max_in_flight = 1;
    options.singles_after_unimplemented = singles_after_unimplemented;
    client_ = std::make_unique<BatchingParticipantClient>(transport_.get(), RealClock(), options);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  Result* Prepare(const std::string& txid) {
    Result* r = NewResult();
    client_->Prepare(branch_, txid, kTimeout, [r](absl::StatusOr<Vote> vote) {
      r->vote = vote;
      r->done.Notify();
    });
    return r;
  }
  Result* Commit(const std::string& txid) { return Phase2(&ParticipantClient::Commit, txid); }
  Result* Abort(const std::string& txid, absl::Duration timeout = kTimeout) {
    return Phase2(&ParticipantClient::Abort, txid, timeout);
  }
  // Commit or Abort, whose callbacks take a status.
  template <typename Method>
  Result* Phase2(Method method, const std::string& txid, absl::Duration timeout = kTimeout) {
    Result* r = NewResult();
    (client_.get()->*method)(branch_, txid, timeout, [r](absl::Status status) {
      r->status = status;
      r->done.Notify();
    });
    return r;
  }
  Result* NewResult() {
    results_.push_back(std::make_unique<Result>());
    return results_.back().get();
  }
  static void Wait(Result* r) { ASSERT_TRUE(r->done.WaitForNotificationWithTimeout(kTimeout)); }

  std::unique_ptr<grpc::Server> server_;
  BranchRef branch_;
  std::unique_ptr<GrpcParticipantTransport> transport_;
  std::unique_ptr<BatchingParticipantClient> client_;
  std::vector<std::unique_ptr<Result>> results_;
};

TEST_F(GrpcParticipantTransportTest, IdleParticipantGetsSingleCalls) {
  BatchingParticipant participant;
  Start(&participant);
  for (const char* txid : {"c.1.1y", "c.1.2r", "c.1.3"}) {
    Result* r = Prepare(txid);
    Wait(r);
  }
  Result* c = Commit("c.1.1y");
  Wait(c);
  EXPECT_TRUE(c->status.ok()) << c->status;
  EXPECT_EQ(participant.calls(), (std::vector<std::string>{"Prepare c.1.1y", "Prepare c.1.2r",
                                                           "Prepare c.1.3", "Commit c.1.1y"}));
  EXPECT_EQ(client_->batches_sent(), 0);
  EXPECT_EQ(results_[0]->vote.value(), Vote::kYes);
  EXPECT_EQ(results_[1]->vote.value(), Vote::kReadOnly);
  EXPECT_TRUE(absl::IsAborted(results_[2]->vote.status())) << results_[2]->vote.status();
}

TEST_F(GrpcParticipantTransportTest, CallsQueuedBehindABusyParticipantGoAsOneBatch) {
  BatchingParticipant participant;
  Start(&participant);
  participant.Hold();
  Result* first = Prepare("c.1.0y");
  participant.WaitForCalls(1);  // the only slot is taken
  Result* yes = Prepare("c.1.1y");
  Result* read_only = Prepare("c.1.2r");
  Result* no = Prepare("c.1.3");
  Result* committed = Commit("c.1.4y");
  Result* refused = Commit("c.1.5f");
  Result* aborted = Abort("c.1.6");
  participant.Release();
  for (Result* r : {first, yes, read_only, no, committed, refused, aborted}) Wait(r);

  EXPECT_EQ(participant.calls(), (std::vector<std::string>{"Prepare c.1.0y", "Batch 6"}));
  EXPECT_EQ(client_->batches_sent(), 1);
  EXPECT_EQ(client_->batched_entries(), 6);
  EXPECT_EQ(first->vote.value(), Vote::kYes);
  EXPECT_EQ(yes->vote.value(), Vote::kYes);
  EXPECT_EQ(read_only->vote.value(), Vote::kReadOnly);
  EXPECT_TRUE(absl::IsAborted(no->vote.status())) << no->vote.status();
  EXPECT_TRUE(absl::StrContains(no->vote.status().message(), "unknown branch"));
  EXPECT_TRUE(committed->status.ok()) << committed->status;
  EXPECT_TRUE(absl::IsFailedPrecondition(refused->status)) << refused->status;
  EXPECT_TRUE(absl::StrContains(refused->status.message(), "HEURISTIC_MIXED"));
  EXPECT_TRUE(aborted->status.ok()) << aborted->status;
}

TEST_F(GrpcParticipantTransportTest, ParticipantWithoutBatchGetsTheQueuedCallsOneByOne) {
  FakeParticipant participant;  // Batch: UNIMPLEMENTED
  Start(&participant);
  participant.Hold();
  Result* first = Prepare("c.1.0y");
  participant.WaitForCalls(1);
  Result* yes = Prepare("c.1.1y");
  Result* committed = Commit("c.1.2y");
  participant.Release();
  for (Result* r : {first, yes, committed}) Wait(r);
  EXPECT_EQ(yes->vote.value(), Vote::kYes);
  EXPECT_TRUE(committed->status.ok()) << committed->status;

  // Later queues go as single calls straight away (for a minute).
  participant.Hold();
  Result* second = Prepare("c.1.3y");
  participant.WaitForCalls(4);
  Result* third = Prepare("c.1.4r");
  participant.Release();
  for (Result* r : {second, third}) Wait(r);
  EXPECT_EQ(third->vote.value(), Vote::kReadOnly);
  EXPECT_EQ(client_->batches_sent(), 1) << "only the first batch was tried";
  const std::vector<std::string> calls = participant.calls();
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "Prepare c.1.1y"), 1);
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "Commit c.1.2y"), 1);
  EXPECT_EQ(std::count(calls.begin(), calls.end(), "Prepare c.1.4r"), 1);
}

TEST_F(GrpcParticipantTransportTest, QueuedCallPastItsDeadlineIsAnsweredUnsentAndTheRestGoOn) {
  BatchingParticipant participant;
  Start(&participant);
  participant.Hold();
  Result* first = Prepare("c.1.0y");
  participant.WaitForCalls(1);
  Result* stale = Abort("c.1.1", absl::ZeroDuration());
  Result* fresh = Commit("c.1.2y");
  participant.Release();
  for (Result* r : {first, stale, fresh}) Wait(r);
  EXPECT_TRUE(absl::IsDeadlineExceeded(stale->status)) << stale->status;
  EXPECT_TRUE(fresh->status.ok()) << fresh->status;
  EXPECT_EQ(participant.calls(), (std::vector<std::string>{"Prepare c.1.0y", "Commit c.1.2y"}));
}

TEST_F(GrpcParticipantTransportTest, BatchIsTriedAgainAfterAWhileOfSingleCalls) {
  FakeParticipant participant;  // Batch: UNIMPLEMENTED, every time
  Start(&participant, /*singles_after_unimplemented=*/absl::ZeroDuration());
  for (int round = 0; round < 2; ++round) {
    participant.Hold();
    const size_t before = participant.calls().size();
    Result* first = Prepare(absl::StrCat("c.", round, ".0y"));
    participant.WaitForCalls(before + 1);
    Result* a = Prepare(absl::StrCat("c.", round, ".1y"));
    Result* b = Commit(absl::StrCat("c.", round, ".2y"));
    participant.Release();
    for (Result* r : {first, a, b}) Wait(r);
    EXPECT_EQ(a->vote.value(), Vote::kYes);
    EXPECT_TRUE(b->status.ok()) << b->status;
  }
  EXPECT_EQ(client_->batches_sent(), 2) << "each round tried Batch first";
}

TEST_F(GrpcParticipantTransportTest, UnreachableParticipantFailsEveryQueuedCall) {
  BatchingParticipant participant;
  Start(&participant);
  server_->Shutdown();
  server_.reset();
  std::vector<Result*> all;
  for (int i = 0; i < 5; ++i) {
    all.push_back(Prepare(absl::StrCat("c.1.", i, "y")));
    all.push_back(Commit(absl::StrCat("c.2.", i, "y")));
  }
  for (Result* r : all) Wait(r);
  for (size_t i = 0; i < all.size(); ++i) {
    const absl::Status status = i % 2 == 0 ? all[i]->vote.status() : all[i]->status;
    EXPECT_TRUE(absl::IsUnavailable(status)) << i << ": " << status;
  }
}

TEST_F(GrpcParticipantTransportTest, CommitOnePhaseAnswersTheParticipantsOutcome) {
  BatchingParticipant participant;
  Start(&participant);
  for (const char* txid : {"c.1.1y", "c.1.2"}) {
    absl::Notification done;
    absl::StatusOr<bool> committed = absl::UnknownError("not answered");
    client_->CommitOnePhase(branch_, txid, kTimeout, [&](absl::StatusOr<bool> outcome) {
      committed = outcome;
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(kTimeout));
    ASSERT_TRUE(committed.ok()) << committed.status();
    EXPECT_EQ(*committed, absl::EndsWith(txid, "y")) << txid;
  }
  EXPECT_EQ(participant.calls(),
            (std::vector<std::string>{"CommitOnePhase c.1.1y", "CommitOnePhase c.1.2"}));
}

// The transport alone: what a Batch call gives back when the participant's
// answer cannot be matched to the entries, or there is no Batch at all.
class GrpcBatchTest : public GrpcParticipantTransportTest {
 protected:
  absl::StatusOr<std::vector<BatchAnswer>> Batch(std::vector<BatchEntry> entries) {
    absl::Notification done;
    absl::StatusOr<std::vector<BatchAnswer>> got = absl::UnknownError("not answered");
    transport_->Batch(branch_.endpoint, std::move(entries), kTimeout,
                      [&](absl::StatusOr<std::vector<BatchAnswer>> answers) {
                        got = std::move(answers);
                        done.Notify();
                      });
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(kTimeout));
    return got;
  }
};

TEST_F(GrpcBatchTest, EntriesAreAnsweredInOrderWithNoVotesAsAborted) {
  BatchingParticipant participant;
  Start(&participant);
  absl::StatusOr<std::vector<BatchAnswer>> answers = Batch({{BranchOp::kPrepare, "c.1.1y", 7},
                                                            {BranchOp::kPrepare, "c.1.2"},
                                                            {BranchOp::kCommit, "c.1.3f"},
                                                            {BranchOp::kAbort, "c.1.4"}});
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_EQ(answers->size(), 4u);
  EXPECT_TRUE((*answers)[0].status.ok()) << (*answers)[0].status;
  EXPECT_EQ((*answers)[0].vote, Vote::kYes);
  EXPECT_TRUE(absl::IsAborted((*answers)[1].status)) << (*answers)[1].status;
  EXPECT_TRUE(absl::StrContains((*answers)[1].status.message(), "unknown branch"));
  EXPECT_TRUE(absl::IsFailedPrecondition((*answers)[2].status)) << (*answers)[2].status;
  EXPECT_TRUE((*answers)[3].status.ok()) << (*answers)[3].status;
}

TEST_F(GrpcBatchTest, TooFewAnswersFailTheWholeCall) {
  ShortBatchParticipant participant;
  Start(&participant);
  absl::StatusOr<std::vector<BatchAnswer>> answers =
      Batch({{BranchOp::kCommit, "c.1.1y"}, {BranchOp::kAbort, "c.1.2"}});
  EXPECT_TRUE(absl::IsInternal(answers.status())) << answers.status();
  EXPECT_TRUE(absl::StrContains(answers.status().message(), "answered 1 of 2"));
}

TEST_F(GrpcBatchTest, ParticipantWithoutBatchIsUnimplemented) {
  FakeParticipant participant;
  Start(&participant);
  absl::StatusOr<std::vector<BatchAnswer>> answers = Batch({{BranchOp::kCommit, "c.1.1y"}});
  EXPECT_TRUE(absl::IsUnimplemented(answers.status())) << answers.status();
}

}  // namespace
}  // namespace txcoord::coordinator
