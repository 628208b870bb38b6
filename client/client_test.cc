// Client, AgentClient and Transaction against in-process fake Coordinator
// and Agent services: requests as sent, deadlines, outcome and status
// mapping, values, Commit settling a lost answer, and which agents a
// Transaction releases.
#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "client/channel_cache.h"
#include "client/transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord {
namespace {

using ::testing::HasSubstr;

// Time left until a server-side call's deadline.
absl::Duration TimeLeft(const grpc::ServerContext* context) {
  return absl::FromChrono(context->deadline() - std::chrono::system_clock::now());
}

class FakeCoordinator final : public v1::Coordinator::Service {
 public:
  grpc::Status Begin(grpc::ServerContext* context, const v1::BeginRequest* request,
                     v1::BeginResponse* response) override {
    absl::MutexLock lock(&mu_);
    last_timeout_ms_ = request->timeout_ms();
    last_time_left_ = TimeLeft(context);
    ++begin_calls_;
    response->set_txid("fake.1.1");
    return grpc::Status::OK;
  }
  grpc::Status ReserveTxids(grpc::ServerContext*, const v1::ReserveTxidsRequest* request,
                            v1::ReserveTxidsResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++reserve_calls_;
    last_timeout_ms_ = request->timeout_ms();
    if (reserve_error_ != grpc::StatusCode::OK) return grpc::Status(reserve_error_, "refused");
    response->set_cluster("fake");
    response->set_epoch(epoch_);
    response->set_first_sequence(next_reserved_);
    response->set_count(request->count());
    response->set_valid_for_ms(reserve_valid_for_ms_);
    response->set_checks_named_branches(true);
    next_reserved_ += request->count();
    return grpc::Status::OK;
  }
  grpc::Status Commit(grpc::ServerContext* context, const v1::CommitRequest* request,
                      v1::CommitResponse* response) override {
    absl::MutexLock lock(&mu_);
    last_time_left_ = TimeLeft(context);
    ++commit_calls_;
    if (request->txid() == "missing")
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such txid");
    if (request->txid() == "expired")
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "outcome expired");
    if (failing_commits_ != 0) {
      if (failing_commits_ > 0) --failing_commits_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "log sync failed");
    }
    response->set_outcome(outcome_);
    response->set_reason(outcome_ == v1::OUTCOME_ABORTED ? abort_reason_ : "");
    response->set_coordinator_epoch(epoch_);
    return grpc::Status::OK;
  }
  grpc::Status Abort(grpc::ServerContext*, const v1::AbortRequest* request,
                     v1::AbortResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++abort_calls_;
    if (request->txid().empty())
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "txid is empty");
    response->set_coordinator_epoch(epoch_);
    return grpc::Status::OK;
  }
  grpc::Status GetTransaction(grpc::ServerContext*, const v1::GetTransactionRequest* request,
                              v1::Transaction* response) override {
    response->set_txid(request->txid());
    response->set_state(v1::TX_STATE_COMMITTING);
    response->add_branches()->set_participant("bank-a");
    return grpc::Status::OK;
  }

  // The epoch the fake answers from (a restart: a higher one).
  void set_epoch(uint64_t epoch) {
    absl::MutexLock lock(&mu_);
    epoch_ = epoch;
  }
  void set_outcome(v1::Outcome outcome) {
    absl::MutexLock lock(&mu_);
    outcome_ = outcome;
  }
  // The next `n` Commit calls fail with UNAVAILABLE; -1: every one.
  void FailCommits(int n) {
    absl::MutexLock lock(&mu_);
    failing_commits_ = n;
  }
  int commit_calls() {
    absl::MutexLock lock(&mu_);
    return commit_calls_;
  }
  int begin_calls() {
    absl::MutexLock lock(&mu_);
    return begin_calls_;
  }
  int reserve_calls() {
    absl::MutexLock lock(&mu_);
    return reserve_calls_;
  }
  // ReserveTxids fails with `code` (UNIMPLEMENTED: as a coordinator that
  // predates it).
  void set_reserve_error(grpc::StatusCode code) {
    absl::MutexLock lock(&mu_);
    reserve_error_ = code;
  }
  // Commit answers ABORTED with this reason.
  void set_abort_reason(const std::string& reason) {
    absl::MutexLock lock(&mu_);
    abort_reason_ = reason;
  }
  void set_reserve_valid_for_ms(uint32_t ms) {
    absl::MutexLock lock(&mu_);
    reserve_valid_for_ms_ = ms;
  }
  int abort_calls() {
    absl::MutexLock lock(&mu_);
    return abort_calls_;
  }
  uint32_t last_timeout_ms() {
    absl::MutexLock lock(&mu_);
    return last_timeout_ms_;
  }
  absl::Duration last_time_left() {
    absl::MutexLock lock(&mu_);
    return last_time_left_;
  }

 private:
  absl::Mutex mu_;
  v1::Outcome outcome_ ABSL_GUARDED_BY(mu_) = v1::OUTCOME_COMMITTED;
  int failing_commits_ ABSL_GUARDED_BY(mu_) = 0;
  int commit_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int begin_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int reserve_calls_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::StatusCode reserve_error_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
  std::string abort_reason_ ABSL_GUARDED_BY(mu_) = "bank-b voted NO";
  uint32_t reserve_valid_for_ms_ ABSL_GUARDED_BY(mu_) = 60000;
  uint64_t next_reserved_ ABSL_GUARDED_BY(mu_) = 1;
  int abort_calls_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 2;
  uint32_t last_timeout_ms_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration last_time_left_ ABSL_GUARDED_BY(mu_);
};

// Echoes each statement's parameters back as its one row; changes = the
// number of parameters.
class FakeAgent final : public v1::Agent::Service {
 public:
  grpc::Status Execute(grpc::ServerContext* context, const v1::ExecuteRequest* request,
                       v1::ExecuteResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      last_request_ = *request;
      last_time_left_ = TimeLeft(context);
    }
    if (request->statements_size() == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no statements");
    }
    {
      absl::MutexLock lock(&mu_);
      ++executes_;
    }
    for (const v1::Statement& statement : request->statements()) {
      if (statement.sql() == "AFTER_ANOTHER") {
        // Answers only once another Execute has arrived.
        if (!AwaitExecutes(2, absl::Seconds(10))) {
          return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no other Execute came");
        }
      }
      if (statement.sql() == "STALL") {
        // Until the client gives up on the call.
        while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(1));
        absl::MutexLock lock(&mu_);
        ++cancelled_;
        return grpc::Status(grpc::StatusCode::CANCELLED, "stalled");
      }
      if (statement.sql() == "LOCKED") {
        return grpc::Status(grpc::StatusCode::ABORTED, "lock timeout after 1s");
      }
      v1::StatementResult* result = response->add_results();
      result->add_columns(statement.sql());
      *result->add_rows()->mutable_values() = statement.params();
      result->set_changes(statement.params_size());
      result->set_last_insert_rowid(7);
    }
    if (request->prepare()) response->set_vote(v1::VOTE_YES);
    return grpc::Status::OK;
  }

  grpc::Status Release(grpc::ServerContext*, const v1::ReleaseRequest* request,
                       v1::ReleaseResponse* response) override {
    absl::MutexLock lock(&mu_);
    released_.push_back(request->txid());
    response->set_released(true);
    return grpc::Status::OK;
  }

  v1::ExecuteRequest last_request() {
    absl::MutexLock lock(&mu_);
    return last_request_;
  }
  std::vector<std::string> released() {
    absl::MutexLock lock(&mu_);
    return released_;
  }
  absl::Duration last_time_left() {
    absl::MutexLock lock(&mu_);
    return last_time_left_;
  }
  int executes() {
    absl::MutexLock lock(&mu_);
    return executes_;
  }
  // Whether `n` Executes arrived / `n` stalled ones saw their call
  // cancelled within `limit`.
  bool AwaitExecutes(int n, absl::Duration limit) { return AwaitCount(&executes_, n, limit); }
  bool AwaitCancelled(int n, absl::Duration limit) { return AwaitCount(&cancelled_, n, limit); }

 private:
  bool AwaitCount(const int* count, int n, absl::Duration limit) {
    absl::MutexLock lock(&mu_);
    const auto enough = [count, n] { return *count >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), limit);
  }

  absl::Mutex mu_;
  int executes_ ABSL_GUARDED_BY(mu_) = 0;
  int cancelled_ ABSL_GUARDED_BY(mu_) = 0;
  v1::ExecuteRequest last_request_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> released_ ABSL_GUARDED_BY(mu_);
  absl::Duration last_time_left_ ABSL_GUARDED_BY(mu_);
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&coordinator_service_);
    builder.RegisterService(&agent_service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { server_->Shutdown(); }

  FakeCoordinator coordinator_service_;
  FakeAgent agent_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
};

TEST_F(ClientTest, BeginSendsTheTimeoutRoundedUpToMilliseconds) {
  Client client(target_);
  absl::StatusOr<std::string> txid = client.Begin(absl::Microseconds(1500));
  ASSERT_TRUE(txid.ok()) << txid.status();
  EXPECT_EQ(*txid, "fake.1.1");
  EXPECT_EQ(coordinator_service_.last_timeout_ms(), 2u);
  ASSERT_TRUE(client.Begin(absl::Microseconds(1)).ok());
  EXPECT_EQ(coordinator_service_.last_timeout_ms(), 1u)
      << "a tiny timeout must not become the default";
  ASSERT_TRUE(client.Begin().ok());
  EXPECT_EQ(coordinator_service_.last_timeout_ms(), 0u);
}

TEST_F(ClientTest, BeginHandsOutReservedTxidsWithOneCallPerBlock) {
  ClientOptions options;
  options.reserve_txids = 3;
  Client client(target_, options);
  for (int i = 1; i <= 7; ++i) {
    absl::StatusOr<BeginResult> begun = client.BeginWith(absl::Seconds(5));
    ASSERT_TRUE(begun.ok()) << begun.status();
    EXPECT_EQ(begun->txid, absl::StrCat("fake.2.", i));
    EXPECT_TRUE(begun->checks_named_branches);
  }
  EXPECT_EQ(coordinator_service_.reserve_calls(), 3);
  EXPECT_EQ(coordinator_service_.begin_calls(), 0);
  EXPECT_EQ(coordinator_service_.last_timeout_ms(), 5000u);
  // Another timeout while the block lives: a Begin call.
  ASSERT_EQ(client.Begin(absl::Seconds(6)).value(), "fake.1.1");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 3);
  EXPECT_EQ(coordinator_service_.begin_calls(), 1);
  ASSERT_EQ(client.Begin(absl::Seconds(5)).value(), "fake.2.8");
}

TEST_F(ClientTest, ReservedTxidsAreHandedOutOnlyInTheFirstHalfOfTheirLife) {
  coordinator_service_.set_reserve_valid_for_ms(2000);
  // The client's steady clock, moved by hand.
  auto now = std::make_shared<std::atomic<int64_t>>(0);  // ms
  ClientOptions options;
  options.reserve_txids = 8;
  options.steady_now = [now] {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(now->load()));
  };
  Client client(target_, options);
  ASSERT_EQ(client.Begin().value(), "fake.2.1");
  now->store(999);  // still within half the reservation's life
  ASSERT_EQ(client.Begin().value(), "fake.2.2");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 1);
  now->store(1000);  // half of it gone: a new block
  ASSERT_EQ(client.Begin().value(), "fake.2.9");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 2);
}

TEST_F(ClientTest, ABlockTheCoordinatorNoLongerKnowsIsDropped) {
  ClientOptions options;
  options.reserve_txids = 8;
  Client client(target_, options);
  ASSERT_EQ(client.Begin().value(), "fake.2.1");
  ASSERT_EQ(client.Begin().value(), "fake.2.2");
  // A Commit answered by presumed abort (the coordinator restarted, or the
  // reservation expired): the rest of the block would fail alike.
  coordinator_service_.set_outcome(v1::OUTCOME_ABORTED);
  coordinator_service_.set_abort_reason(
      "not committed: the coordinator holds no commit for it (aborted, or undecided when the "
      "coordinator restarted: presumed abort)");
  ASSERT_FALSE(client.Commit("fake.2.1").value().committed);
  ASSERT_EQ(client.Begin().value(), "fake.2.9");
  // An ordinary abort keeps it.
  coordinator_service_.set_abort_reason("bank-b voted NO");
  ASSERT_FALSE(client.Commit("fake.2.9").value().committed);
  ASSERT_EQ(client.Begin().value(), "fake.2.10");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 2);
}

TEST_F(ClientTest, AnAnswerFromALaterEpochDropsTheBlock) {
  ClientOptions options;
  options.reserve_txids = 8;
  Client client(target_, options);
  ASSERT_EQ(client.Begin().value(), "fake.2.1");
  ASSERT_EQ(client.Begin().value(), "fake.2.2");
  // Answers from the block's own epoch keep it, whatever they say.
  ASSERT_TRUE(client.Abort("fake.2.1").ok());
  ASSERT_EQ(client.Begin().value(), "fake.2.3");
  // The coordinator restarted: its Abort of a txid of the old block (OK:
  // it never began there) comes from epoch 3, and the block goes.
  coordinator_service_.set_epoch(3);
  ASSERT_TRUE(client.Abort("fake.2.2").ok());
  ASSERT_EQ(client.Begin().value(), "fake.3.9");
  // So does a Commit's answer from a later epoch.
  coordinator_service_.set_epoch(4);
  ASSERT_TRUE(client.Commit("fake.3.9").value().committed);
  ASSERT_EQ(client.Begin().value(), "fake.4.17");
  // An answer about another coordinator's txid says nothing of this block.
  coordinator_service_.set_epoch(9);
  ASSERT_TRUE(client.Abort("other.4.1").ok());
  ASSERT_EQ(client.Begin().value(), "fake.4.18");
  // Nor does one from an earlier epoch: a stale owner that has not yet
  // learnt it was replaced; the block is its successor's.
  coordinator_service_.set_epoch(3);
  ASSERT_TRUE(client.Abort("fake.4.17").ok());
  ASSERT_EQ(client.Begin().value(), "fake.4.19");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 3);
}

TEST_F(ClientTest, AReservationFromBeforeARestartTheClientHeardOfIsNotUsed) {
  ClientOptions options;
  options.reserve_txids = 2;
  Client client(target_, options);
  ASSERT_EQ(client.Begin().value(), "fake.2.1");
  // An answer from epoch 5 arrives; the next reservation still comes from
  // epoch 2 (sent before the restart, or answered by a stale owner), and
  // none of its txids is handed out: Begin instead.
  coordinator_service_.set_epoch(5);
  ASSERT_TRUE(client.Abort("fake.2.1").ok());
  coordinator_service_.set_epoch(2);
  ASSERT_EQ(client.Begin().value(), "fake.1.1");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 2);
  EXPECT_EQ(coordinator_service_.begin_calls(), 1);
}

TEST_F(ClientTest, AFailedReservationIsNotRetriedAtOnce) {
  coordinator_service_.set_reserve_error(grpc::StatusCode::RESOURCE_EXHAUSTED);
  ClientOptions options;
  options.reserve_txids = 8;
  Client client(target_, options);
  ASSERT_EQ(client.Begin().value(), "fake.1.1");
  ASSERT_EQ(client.Begin().value(), "fake.1.1");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 1);
  EXPECT_EQ(coordinator_service_.begin_calls(), 2);
}

TEST_F(ClientTest, AReservationAlreadyOverWhenItArrivesFallsBackToBegin) {
  // A reservation already half over when it arrives: no txid of it is
  // handed out, and Begin is called instead.
  coordinator_service_.set_reserve_valid_for_ms(0);
  ClientOptions options;
  options.reserve_txids = 8;
  Client client(target_, options);
  ASSERT_EQ(client.Begin().value(), "fake.1.1");
  ASSERT_EQ(client.Begin().value(), "fake.1.1");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 2);
  EXPECT_EQ(coordinator_service_.begin_calls(), 2);
}

TEST_F(ClientTest, BeginIsCalledWhenTheCoordinatorCannotReserve) {
  coordinator_service_.set_reserve_error(grpc::StatusCode::UNIMPLEMENTED);
  ClientOptions options;
  options.reserve_txids = 8;
  Client client(target_, options);
  ASSERT_EQ(client.Begin().value(), "fake.1.1");
  ASSERT_EQ(client.Begin().value(), "fake.1.1");
  EXPECT_EQ(coordinator_service_.reserve_calls(), 1) << "asked again at once after UNIMPLEMENTED";
  EXPECT_EQ(coordinator_service_.begin_calls(), 2);
}

TEST_F(ClientTest, BeginRefusesTimeoutsOutsideTheContract) {
  Client client(target_);
  EXPECT_TRUE(
      absl::IsInvalidArgument(client.Begin(absl::Hours(1) + absl::Milliseconds(1)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(client.Begin(-absl::Seconds(1)).status()));
  EXPECT_TRUE(client.Begin(absl::Hours(1)).ok());
}

TEST_F(ClientTest, CallsCarryTheirDeadlines) {
  ClientOptions options;
  options.call_timeout = absl::Seconds(7);
  options.commit_timeout = absl::Seconds(40);
  Client client(target_, options);
  // The wire format of a deadline (grpc-timeout) rounds it up a little.
  ASSERT_TRUE(client.Begin().ok());
  EXPECT_GT(coordinator_service_.last_time_left(), absl::Seconds(5));
  EXPECT_LE(coordinator_service_.last_time_left(), absl::Seconds(8));
  ASSERT_TRUE(client.Commit("fake.1.1").ok());
  EXPECT_GT(coordinator_service_.last_time_left(), absl::Seconds(38));
  EXPECT_LE(coordinator_service_.last_time_left(), absl::Seconds(41));
}

TEST_F(ClientTest, CommitReportsTheDecision) {
  Client client(target_);
  absl::StatusOr<CommitResult> committed = client.Commit("fake.1.1");
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_TRUE(committed->committed);
  EXPECT_EQ(committed->reason, "");

  coordinator_service_.set_outcome(v1::OUTCOME_ABORTED);
  absl::StatusOr<CommitResult> aborted = client.Commit("fake.1.1");
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  EXPECT_FALSE(aborted->committed);
  EXPECT_EQ(aborted->reason, "bank-b voted NO");

  // Anything but a final outcome is a broken coordinator, not a decision.
  coordinator_service_.set_outcome(v1::OUTCOME_PENDING);
  absl::StatusOr<CommitResult> pending = client.Commit("fake.1.1");
  EXPECT_TRUE(absl::IsInternal(pending.status())) << pending.status();
  EXPECT_THAT(pending.status().message(), HasSubstr("OUTCOME_PENDING"));
}

TEST_F(ClientTest, ServerErrorsKeepCodeAndMessage) {
  Client client(target_);
  absl::StatusOr<CommitResult> missing = client.Commit("missing");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_EQ(missing.status().message(), "no such txid");
  absl::Status empty = client.Abort("");
  EXPECT_TRUE(absl::IsInvalidArgument(empty)) << empty;
  EXPECT_TRUE(client.Abort("fake.1.1").ok());
}

TEST_F(ClientTest, GetTransactionReturnsTheProto) {
  Client client(target_);
  absl::StatusOr<v1::Transaction> transaction = client.GetTransaction("fake.1.1");
  ASSERT_TRUE(transaction.ok()) << transaction.status();
  EXPECT_EQ(transaction->txid(), "fake.1.1");
  EXPECT_EQ(transaction->state(), v1::TX_STATE_COMMITTING);
  ASSERT_EQ(transaction->branches_size(), 1);
}

TEST_F(ClientTest, CommitCallsAgainUntilTheCoordinatorAnswers) {
  Client client(target_);
  coordinator_service_.FailCommits(2);
  absl::StatusOr<CommitResult> result = client.Commit("fake.1.1");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed);
  EXPECT_EQ(coordinator_service_.commit_calls(), 3);
}

TEST_F(ClientTest, CommitReportsOutcomeUnknownWhenNoAnswerComesWithinTheSettleTimeout) {
  ClientOptions options;
  options.settle_timeout = absl::Milliseconds(300);
  Client client(target_, options);
  coordinator_service_.FailCommits(-1);
  absl::StatusOr<CommitResult> result = client.Commit("fake.1.1");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnknown) << result.status();
  EXPECT_TRUE(IsOutcomeUnknown(result.status())) << result.status();
  EXPECT_TRUE(absl::StartsWith(result.status().message(), "outcome of fake.1.1 unknown"))
      << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr("log sync failed"));  // the last error
  EXPECT_GT(coordinator_service_.commit_calls(), 1);
  EXPECT_FALSE(IsOutcomeUnknown(absl::UnknownError("something else")));
}

TEST(ClientUnreachableTest, CommitReportsOutcomeUnknownWhenTheCoordinatorIsUnreachable) {
  ClientOptions options;
  options.settle_timeout = absl::Milliseconds(300);
  Client client("127.0.0.1:1", options);  // nothing listens there
  absl::StatusOr<CommitResult> result = client.Commit("fake.1.1");
  EXPECT_TRUE(IsOutcomeUnknown(result.status())) << result.status();
}

TEST_F(ClientTest, CommitReturnsAnExpiredOutcomeAsIs) {
  Client client(target_);
  absl::StatusOr<CommitResult> result = client.Commit("expired");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kOutOfRange) << result.status();
  EXPECT_EQ(coordinator_service_.commit_calls(), 1);
}

TEST_F(ClientTest, CommitWithoutSettlingReturnsTheFirstCallsError) {
  ClientOptions options;
  options.settle_timeout = absl::ZeroDuration();
  Client client(target_, options);
  coordinator_service_.FailCommits(1);
  absl::StatusOr<CommitResult> result = client.Commit("fake.1.1");
  EXPECT_TRUE(absl::IsUnavailable(result.status())) << result.status();
  EXPECT_EQ(coordinator_service_.commit_calls(), 1);
}

TEST_F(ClientTest, TransactionAbortReleasesEveryAgentItUsed) {
  Client client(target_);
  AgentClient agent(target_);
  absl::StatusOr<Transaction> tx = client.BeginTransaction();
  ASSERT_TRUE(tx.ok()) << tx.status();
  // A read: its branch never enlists, so the coordinator's Abort misses it.
  absl::StatusOr<SqlResult> read = tx->ExecuteOne(agent, "SELECT 1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->changes, 0);
  ASSERT_TRUE(tx->Abort().ok());
  EXPECT_EQ(coordinator_service_.abort_calls(), 1);
  EXPECT_EQ(agent_service_.released(), std::vector<std::string>{"fake.1.1"});
}

TEST_F(ClientTest, TransactionCommitReleasesOnlyAgentsWhereItChangedNothing) {
  Client client(target_);
  AgentClient writer(target_);
  AgentClient reader(target_);
  absl::StatusOr<Transaction> tx = client.BeginTransaction();
  ASSERT_TRUE(tx.ok()) << tx.status();
  ASSERT_TRUE(tx->ExecuteOne(writer, "UPDATE x", {int64_t{1}}).ok());  // changes 1
  ASSERT_TRUE(tx->ExecuteOne(reader, "SELECT 1").ok());                // changes 0
  absl::StatusOr<CommitResult> result = tx->Commit();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed);
  // One Release: the reader's. The writer's branch is phase 2's.
  EXPECT_EQ(agent_service_.released(), std::vector<std::string>{"fake.1.1"});
}

TEST_F(ClientTest, AgentReleaseSendsTheTxidAndReturnsTheAnswer) {
  AgentClient agent(target_);
  absl::StatusOr<ReleaseResult> released = agent.Release("fake.1.2");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(released->released);
  EXPECT_EQ(agent_service_.released(), std::vector<std::string>{"fake.1.2"});
}

TEST(ClientUnreachableTest, FailsFastWithUnavailableWhenNotWaitingForReady) {
  ClientOptions options;
  options.wait_for_ready = false;
  // Port 1 on loopback: nothing listens, the connection is refused.
  Client client("127.0.0.1:1", options);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> txid = client.Begin();
  EXPECT_TRUE(absl::IsUnavailable(txid.status())) << txid.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(ClientUnreachableTest, WaitsForReadyByDefaultUntilTheDeadline) {
  ClientOptions options;
  options.call_timeout = absl::Milliseconds(200);
  Client client("127.0.0.1:1", options);
  absl::StatusOr<std::string> txid = client.Begin();
  EXPECT_TRUE(absl::IsDeadlineExceeded(txid.status())) << txid.status();
}

TEST_F(ClientTest, ExecuteSendsEveryFieldAndValueType) {
  AgentClient agent(target_);
  const std::vector<SqlValue> params = {std::monostate{}, int64_t{-5}, 2.5, std::string("text"),
                                        Blob{std::string("\0\1", 2)}};
  ExecuteOptions options;
  options.prepare = true;
  options.lock_timeout = absl::Microseconds(2500);
  absl::StatusOr<ExecuteResult> result =
      agent.Execute("fake.1.1", {{"UPDATE x", params}, {"SELECT 1", {}}}, options);
  ASSERT_TRUE(result.ok()) << result.status();

  v1::ExecuteRequest sent = agent_service_.last_request();
  EXPECT_EQ(sent.txid(), "fake.1.1");
  EXPECT_TRUE(sent.prepare());
  EXPECT_EQ(sent.lock_timeout_ms(), 3u);
  ASSERT_EQ(sent.statements_size(), 2);
  EXPECT_EQ(sent.statements(0).sql(), "UPDATE x");

  EXPECT_EQ(result->vote, v1::VOTE_YES);
  ASSERT_EQ(result->results.size(), 2u);
  const SqlResult& first = result->results[0];
  EXPECT_EQ(first.columns, std::vector<std::string>{"UPDATE x"});
  ASSERT_EQ(first.rows.size(), 1u);
  EXPECT_EQ(first.rows[0], params);
  EXPECT_EQ(first.changes, 5);
  EXPECT_EQ(first.last_insert_rowid, 7);
}

// One round's answers come back in the order the calls were started,
// whatever each one's fate: answered, refused by the agent, or refused
// before it was sent.
TEST_F(ClientTest, AnExecuteRoundAnswersEachCallInTheOrderStarted) {
  AgentClient first(target_);
  AgentClient second(target_);
  AgentClient third(target_);
  ExecuteOptions too_long;
  too_long.lock_timeout = absl::Minutes(2);
  ExecuteRound round;
  // The first call is answered after the second has arrived.
  round.Start(first, "fake.1.1", {{"AFTER_ANOTHER", {}}, {"SELECT ?1", {int64_t{1}}}}, {});
  round.Start(second, "fake.1.1", {{"LOCKED", {}}}, {});
  round.Start(third, "fake.1.1", {{"SELECT 3", {}}}, too_long);
  std::vector<absl::StatusOr<ExecuteResult>> results = round.Wait();
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_EQ(results[0]->results.size(), 2u);
  EXPECT_EQ(results[0]->results[1].columns, std::vector<std::string>{"SELECT ?1"});
  EXPECT_TRUE(absl::IsAborted(results[1].status())) << results[1].status();
  EXPECT_THAT(results[1].status().message(), ::testing::HasSubstr("lock timeout"));
  EXPECT_TRUE(absl::IsInvalidArgument(results[2].status())) << results[2].status();
  EXPECT_THAT(results[2].status().message(), ::testing::HasSubstr("lock timeout 2m"));
  EXPECT_EQ(agent_service_.executes(), 2);
}

TEST_F(ClientTest, AnUnreachableAgentInARoundFailsOnlyItsOwnResult) {
  AgentClient reachable(target_);
  AgentClientOptions fail_fast;
  fail_fast.wait_for_ready = false;
  AgentClient unreachable("127.0.0.1:1", fail_fast);
  ExecuteRound round;
  round.Start(unreachable, "fake.1.1", {{"SELECT 1", {}}}, {});
  round.Start(reachable, "fake.1.1", {{"SELECT 2", {}}}, {});
  std::vector<absl::StatusOr<ExecuteResult>> results = round.Wait();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(absl::IsUnavailable(results[0].status())) << results[0].status();
  EXPECT_TRUE(results[1].ok()) << results[1].status();
}

// A round dropped without Wait cancels what it sent rather than leaving
// the agent to run it out to its deadline.
TEST_F(ClientTest, AnExecuteRoundDroppedUnwaitedCancelsItsCalls) {
  AgentClientOptions patient;
  patient.call_timeout = absl::Seconds(30);
  AgentClient agent(target_, patient);
  absl::Time dropped;
  {
    ExecuteRound round;
    round.Start(agent, "fake.1.1", {{"STALL", {}}}, {});
    // The call has reached the agent before the round goes.
    ASSERT_TRUE(agent_service_.AwaitExecutes(1, absl::Seconds(10)));
    dropped = absl::Now();
  }
  EXPECT_LT(absl::Now() - dropped, absl::Seconds(10)) << "the round waited out its call's deadline";
  EXPECT_TRUE(agent_service_.AwaitCancelled(1, absl::Seconds(10)));
}

TEST_F(ClientTest, ExecuteDeadlineCoversTheLockWait) {
  AgentClientOptions client_options;
  client_options.call_timeout = absl::Seconds(5);
  AgentClient agent(target_, client_options);
  ExecuteOptions options;
  options.lock_timeout = absl::Seconds(20);
  ASSERT_TRUE(agent.ExecuteOne("fake.1.1", "SELECT 1", {}, options).ok());
  EXPECT_GT(agent_service_.last_time_left(), absl::Seconds(23));
  EXPECT_LE(agent_service_.last_time_left(), absl::Seconds(26));
  options.lock_timeout = absl::Seconds(61);
  EXPECT_TRUE(
      absl::IsInvalidArgument(agent.ExecuteOne("fake.1.1", "SELECT 1", {}, options).status()));
}

TEST_F(ClientTest, ExecuteOneReturnsItsResultAndErrorsPassThrough) {
  AgentClient agent(target_);
  absl::StatusOr<SqlResult> one = agent.ExecuteOne("", "INSERT y", {int64_t{1}});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->changes, 1);
  EXPECT_EQ(agent_service_.last_request().txid(), "");
  absl::StatusOr<SqlResult> locked = agent.ExecuteOne("fake.1.1", "LOCKED");
  EXPECT_TRUE(absl::IsAborted(locked.status())) << locked.status();
  EXPECT_THAT(locked.status().message(), HasSubstr("lock timeout"));
  EXPECT_TRUE(absl::IsInvalidArgument(agent.Execute("", {}).status()));
}

TEST(SharedChannelTest, OneChannelPerTargetWhileHeld) {
  std::shared_ptr<grpc::Channel> a1 = SharedChannel("127.0.0.1:7001");
  std::shared_ptr<grpc::Channel> a2 = SharedChannel("127.0.0.1:7001");
  std::shared_ptr<grpc::Channel> b = SharedChannel("127.0.0.1:7002");
  EXPECT_EQ(a1, a2);
  EXPECT_NE(a1, b);
  std::weak_ptr<grpc::Channel> weak = a1;
  a1.reset();
  a2.reset();
  EXPECT_TRUE(weak.expired()) << "the cache must not keep unused channels alive";
}

}  // namespace
}  // namespace txcoord
