// What Commit, Abort and GetTransaction answer for a transaction the engine
// no longer holds, across restarts: the retained outcomes, the ONE_PHASE
// record and the END that says a transaction without COMMIT committed.
#include <string>
#include <vector>

#include "coordinator/engine.h"
#include "coordinator/engine_test_util.h"
#include "coordinator/records.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

using testing::kT0;
using testing::Only;

EngineOptions Options(uint64_t epoch) {
  EngineOptions options;
  options.cluster_id = "c1";
  options.epoch = epoch;
  options.finished_cache = 0;  // only the retained outcomes answer
  options.retention.retention = absl::Hours(1);
  return options;
}

// An engine with a log that keeps every record it is asked to append, as
// if all were durable; Restart replays them into a new engine.
class EngineRetentionTest : public ::testing::Test {
 protected:
  EngineRetentionTest() : engine_(std::make_unique<Engine>(Options(epoch_))) {}

  // Logs what `out` asks to log, and reports forced records durable.
  void Run(const Actions& out, absl::Time now = kT0) {
    Actions next;
    for (const Action& a : out) {
      if (const auto* c = std::get_if<LogCommit>(&a)) {
        log_.push_back({kRecordCommit, EncodeCommit(*c)});
        engine_->OnCommitLogged(c->txid, absl::OkStatus(), now, &next);
      } else if (const auto* p = std::get_if<LogOnePhase>(&a)) {
        log_.push_back({kRecordOnePhase, EncodeOnePhase(*p)});
        engine_->OnOnePhaseLogged(p->txid, absl::OkStatus(), now, &next);
      } else if (const auto* e = std::get_if<LogEnd>(&a)) {
        log_.push_back({kRecordEnd, EncodeEnd(*e)});
      }
    }
    if (!next.empty()) Run(next, now);
    actions_.insert(actions_.end(), out.begin(), out.end());
  }

  // A transaction with `branches`, committed through (all vote YES, every
  // phase 2 acknowledged) unless `finish` is false.
  std::string Committed(const std::vector<std::string>& branches, bool finish = true) {
    std::string txid = testing::BeginWith(*engine_, branches);
    Actions out;
    EXPECT_TRUE(engine_->Commit(txid, kT0, &out).ok());
    Run(out);
    for (const std::string& p : branches) {
      Actions voted;
      engine_->OnPrepareResult(txid, p, Vote::kYes, kT0, &voted);
      Run(voted);
    }
    if (finish) {
      for (const std::string& p : branches) {
        Actions acked;
        engine_->OnPhase2Result(txid, p, absl::OkStatus(), kT0, &acked);
        Run(acked);
      }
    }
    return txid;
  }

  absl::StatusOr<Decided> CommitAgain(const std::string& txid, absl::Time now = kT0) {
    Actions out;
    absl::Status s = engine_->Commit(txid, now, &out);
    if (!s.ok()) return s;
    std::vector<Decided> decided = Only<Decided>(out);
    if (decided.size() != 1) return absl::InternalError("no Decided action");
    return decided[0];
  }

  // A new process: the next epoch, replaying every record logged so far
  // (through a checkpoint of them first if `checkpoint`).
  void Restart(absl::Time now = kT0, bool checkpoint = false) {
    if (checkpoint) {
      log_.clear();
      for (EncodedRecord& r : engine_->Checkpoint()) log_.push_back(std::move(r));
    }
    RecoveryState state(Options(epoch_).retention, now);
    for (const EncodedRecord& r : log_) ASSERT_TRUE(state.Apply(r.type, r.payload).ok());
    engine_ = std::make_unique<Engine>(Options(++epoch_));
    Actions out;
    engine_->Recover(state, now, &out);
    if (!state.saw_expired()) {
      log_.push_back({kRecordExpired, EncodeExpired(engine_->retained().expired())});
    }
    actions_.clear();
    Run(out, now);
  }

  uint64_t epoch_ = 7;
  std::unique_ptr<Engine> engine_;
  std::vector<EncodedRecord> log_;
  Actions actions_;
};

TEST_F(EngineRetentionTest, AnEndedCommitIsStillAnsweredCommitted) {
  Restart();  // a first start logs its EXPIRED mark, as the daemon does
  std::string txid = Committed({"a", "b"});
  ASSERT_EQ(engine_->open_transactions(), 0u);
  absl::StatusOr<Decided> again = CommitAgain(txid);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->committed);
  EXPECT_EQ(engine_->Describe(txid)->state, TxState::kCommitted);
  Actions out;
  EXPECT_EQ(engine_->Abort(txid, "", kT0, &out).code(), absl::StatusCode::kFailedPrecondition);
}

// A branch still asking about an ended, forgotten COMMITTED transaction (an
// operator marked it done while it was prepared, or decided it by hand) is
// never told ABORTED: which branches committed is no longer known.
TEST_F(EngineRetentionTest, AForgottenCommitIsNeverAnsweredAbortedToABranch) {
  Restart();
  const std::string committed = Committed({"a", "b"});
  const std::string aborted = testing::BeginWith(*engine_, {"a"});
  Actions out;
  ASSERT_TRUE(engine_->Abort(aborted, "test", kT0, &out).ok());
  Run(out);
  for (bool restart : {false, true}) {
    if (restart) Restart();
    absl::StatusOr<Outcome> asked = engine_->QueryOutcome(committed, "a");
    EXPECT_TRUE(absl::IsFailedPrecondition(asked.status())) << asked.status();
    EXPECT_EQ(engine_->QueryOutcome(aborted, "a").value(), Outcome::kAborted);
  }
}

TEST_F(EngineRetentionTest, EveryOutcomeIsKnownAfterARestart) {
  Restart();
  std::string committed = Committed({"a", "b"});
  std::string committing = Committed({"a", "b"}, /*finish=*/false);
  std::string active = testing::BeginWith(*engine_, {"a", "b"});
  std::string aborted = testing::BeginWith(*engine_, {"a"});
  Actions out;
  ASSERT_TRUE(engine_->Abort(aborted, "client", kT0, &out).ok());
  Restart(kT0 + absl::Minutes(1));

  for (const std::string& txid : {committed, committing}) {
    absl::StatusOr<Decided> again = CommitAgain(txid);
    ASSERT_TRUE(again.ok()) << txid << ": " << again.status();
    EXPECT_TRUE(again->committed) << txid;
  }
  for (const std::string& txid : {active, aborted}) {
    absl::StatusOr<Decided> again = CommitAgain(txid);
    ASSERT_TRUE(again.ok()) << txid << ": " << again.status();
    EXPECT_FALSE(again->committed) << txid;
    EXPECT_EQ(again->reason, kPresumedAbort);
    EXPECT_EQ(engine_->Describe(txid)->state, TxState::kAborted);
    EXPECT_TRUE(engine_->Abort(txid, "", kT0, &out).ok()) << txid;
  }
}

TEST_F(EngineRetentionTest, OutcomesSurviveACheckpointThatDropsTheirRecords) {
  Restart();
  std::string committed = Committed({"a", "b"});
  std::string aborted = testing::BeginWith(*engine_, {"a"});
  Restart(kT0, /*checkpoint=*/true);
  ASSERT_TRUE(std::none_of(log_.begin(), log_.end(),
                           [](const EncodedRecord& r) { return r.type == kRecordCommit; }));
  EXPECT_TRUE(CommitAgain(committed)->committed);
  EXPECT_FALSE(CommitAgain(aborted)->committed);
}

TEST_F(EngineRetentionTest, ATxidThisEpochNeverIssuedIsNotFound) {
  Restart();
  testing::BeginWith(*engine_, {"a"});
  EXPECT_EQ(CommitAgain("c1.8.2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_->Describe("c1.8.2").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EngineRetentionTest, PastTheWindowTheOutcomeExpiresWithOutOfRange) {
  Restart();
  std::string committed = Committed({"a", "b"});
  std::string aborted = testing::BeginWith(*engine_, {"a"});
  Actions out;
  ASSERT_TRUE(engine_->Abort(aborted, "client", kT0, &out).ok());
  // The window is an hour; two hours on, a new epoch prunes what is older
  // (from a checkpoint, which keeps each chunk's decision time: a COMMIT
  // record replayed counts from the restart).
  Restart(kT0 + absl::Hours(2), /*checkpoint=*/true);
  for (const std::string& txid : {committed, aborted}) {
    EXPECT_EQ(CommitAgain(txid, kT0 + absl::Hours(2)).status().code(),
              absl::StatusCode::kOutOfRange)
        << txid;
    EXPECT_EQ(engine_->Describe(txid).status().code(), absl::StatusCode::kOutOfRange) << txid;
    EXPECT_EQ(engine_->Abort(txid, "", kT0, &out).code(), absl::StatusCode::kOutOfRange) << txid;
  }
  EXPECT_GT(engine_->Stats(kT0 + absl::Hours(2)).retained_chunks_dropped, 0u);
}

TEST_F(EngineRetentionTest, TheWindowNeverExpiresTxidsStillOpenOrNotYetIssued) {
  Restart();
  std::string committed = Committed({"a", "b"});
  std::string open = testing::BeginWith(*engine_, {"a"}, kT0);
  // A quiet day later the first chunk is past the window, but it also holds
  // an open transaction and the sequences still to come.
  const absl::Time later = kT0 + absl::Hours(25);
  std::string next = testing::BeginWith(*engine_, {"a"}, later);
  Actions out;
  ASSERT_TRUE(engine_->Abort(next, "client", later, &out).ok());
  absl::StatusOr<Decided> again = CommitAgain(next, later);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->committed);
  EXPECT_TRUE(CommitAgain(committed, later)->committed);
  ASSERT_TRUE(engine_->Abort(open, "client", later, &out).ok());
  EXPECT_EQ(engine_->Stats(later).retained_chunks_dropped, 0u);
}

TEST_F(EngineRetentionTest, ALogFromBeforeRetentionExpiresEarlierEpochsButKeepsItsCommits) {
  // Epoch 7 ran without retention: its log holds a COMMIT and no EXPIRED.
  log_.push_back({kRecordCommit, EncodeCommit({"c1.7.3", {{"a", "a:1"}}})});
  log_.push_back({kRecordEnd, EncodeEnd({"c1.7.3"})});
  Restart();
  EXPECT_TRUE(CommitAgain("c1.7.3")->committed);
  EXPECT_EQ(CommitAgain("c1.7.4").status().code(), absl::StatusCode::kOutOfRange);
  // The mark it logged keeps epoch 8's outcomes known across the next start.
  std::string aborted = testing::BeginWith(*engine_, {"a"});
  Restart();
  EXPECT_FALSE(CommitAgain(aborted)->committed);
}

TEST_F(EngineRetentionTest, OnePhaseLogsItsRecordBeforeAskingTheBranch) {
  Restart();
  std::string txid = testing::BeginWith(*engine_, {"a"});
  Actions out;
  ASSERT_TRUE(engine_->Commit(txid, kT0, &out).ok());
  EXPECT_EQ(Only<LogOnePhase>(out).size(), 1u);
  EXPECT_TRUE(Only<SendCommitOnePhase>(out).empty()) << "asked before its record is durable";
  Actions logged;
  engine_->OnOnePhaseLogged(txid, absl::OkStatus(), kT0, &logged);
  ASSERT_EQ(Only<SendCommitOnePhase>(logged).size(), 1u);
  Actions answered;
  engine_->OnOnePhaseResult(txid, "a", true, kT0, &answered);
  ASSERT_EQ(Only<LogEnd>(answered).size(), 1u);
  EXPECT_TRUE(Only<LogEnd>(answered)[0].committed);
  EXPECT_TRUE(CommitAgain(txid)->committed);
}

TEST_F(EngineRetentionTest, AOnePhaseCommitCutShortByACrashAsksTheBranchAfterTheRestart) {
  Restart();
  std::string txid = testing::BeginWith(*engine_, {"a"});
  Actions out;
  ASSERT_TRUE(engine_->Commit(txid, kT0, &out).ok());
  Run(out);  // ONE_PHASE logged, CommitOnePhase sent; then the crash
  Restart();
  std::vector<SendCommitOnePhase> asked = Only<SendCommitOnePhase>(actions_);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].txid, txid);
  EXPECT_EQ(engine_->Describe(txid)->state, TxState::kPreparing);
  // A client settling its lost reply waits for the branch's answer.
  Actions waiting;
  ASSERT_TRUE(engine_->Commit(txid, kT0, &waiting).ok());
  EXPECT_TRUE(Only<Decided>(waiting).empty());
  Actions answered;
  engine_->OnOnePhaseResult(txid, "a", true, kT0, &answered);
  Run(answered);
  ASSERT_EQ(Only<Decided>(answered).size(), 1u);
  EXPECT_TRUE(Only<Decided>(answered)[0].committed);
  Restart();
  EXPECT_TRUE(CommitAgain(txid)->committed);
  EXPECT_TRUE(Only<SendCommitOnePhase>(actions_).empty());
}

TEST_F(EngineRetentionTest, AFailedOnePhaseRecordLeavesTheOutcomeUnknownNotAborted) {
  Restart();
  std::string txid = testing::BeginWith(*engine_, {"a"});
  Actions out;
  ASSERT_TRUE(engine_->Commit(txid, kT0, &out).ok());
  Actions failed;
  engine_->OnOnePhaseLogged(txid, absl::UnavailableError("disk"), kT0, &failed);
  std::vector<Decided> decided = Only<Decided>(failed);
  ASSERT_EQ(decided.size(), 1u);
  EXPECT_EQ(decided[0].error.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Only<SendCommitOnePhase>(failed).empty());
  Actions aborting;
  EXPECT_EQ(engine_->Abort(txid, "", kT0, &aborting).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(EngineRetentionTest, AReadOnlyCommitIsRememberedByItsEnd) {
  Restart();
  std::string txid = testing::BeginWith(*engine_, {"a", "b"});
  Actions out;
  ASSERT_TRUE(engine_->Commit(txid, kT0, &out).ok());
  Run(out);
  for (const char* p : {"a", "b"}) {
    Actions voted;
    engine_->OnPrepareResult(txid, p, Vote::kReadOnly, kT0, &voted);
    Run(voted);
  }
  Restart();
  EXPECT_TRUE(CommitAgain(txid)->committed);
}

TEST_F(EngineRetentionTest, ACheckpointCarriesUnfinishedOnePhaseCommits) {
  Restart();
  std::string txid = testing::BeginWith(*engine_, {"a"});
  Actions out;
  ASSERT_TRUE(engine_->Commit(txid, kT0, &out).ok());
  Run(out);
  Restart(kT0, /*checkpoint=*/true);
  ASSERT_EQ(Only<SendCommitOnePhase>(actions_).size(), 1u);
}

}  // namespace
}  // namespace txcoord::coordinator
