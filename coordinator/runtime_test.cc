// The runtime with the real WAL on a fake file system and fake participants:
// what reaches the log, when clients are answered, and what a restart finds;
// and with a log and a scheduler held by the test, when it starts accepting
// work and which clock it reads.
#include "coordinator/runtime.h"

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/timer_queue.h"
#include "common/txid.h"
#include "common/vote_proof.h"
#include "coordinator/coordinator_config.h"
#include "coordinator/records.h"
#include "coordinator/wal/fake_file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

// Answers every call inline with what the test configured; records calls.
class FakeParticipants final : public ParticipantClient {
 public:
  void Prepare(const BranchRef& branch, const std::string& txid, absl::Duration,
               std::function<void(absl::StatusOr<Vote>)> done) override {
    Record("prepare " + branch.participant);
    if (hold_prepares.load()) {
      absl::MutexLock lock(&mu_);
      held_.push_back(std::move(done));
      return;
    }
    done(vote_for(branch.participant));
  }
  void Commit(const BranchRef& branch, const std::string& txid, absl::Duration,
              std::function<void(absl::Status)> done) override {
    Record("commit " + branch.participant + " at " + branch.endpoint);
    Record("commit " + branch.participant);
    bool fail = commit_fails.load();
    {
      absl::MutexLock lock(&mu_);
      fail |= stuck_.contains(txid);
    }
    done(fail ? absl::UnavailableError("agent down") : absl::OkStatus());
    absl::MutexLock lock(&mu_);
    ++answered_commits_;
  }
  void Abort(const BranchRef& branch, const std::string& txid, absl::Duration,
             std::function<void(absl::Status)> done) override {
    Record("abort " + branch.participant);
    if (done) done(absl::OkStatus());
  }
  void CommitOnePhase(const BranchRef& branch, const std::string& txid, absl::Duration,
                      std::function<void(absl::StatusOr<bool>)> done) override {
    Record("one-phase " + branch.participant);
    done(true);
  }

  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int count(const std::string& call) {
    absl::MutexLock lock(&mu_);
    return CountLocked(call);
  }
  // Wait (10 s at most) until `call` was made `n` times in all; until `n`
  // phase-2 Commits were answered and their answers taken in by the
  // runtime (the answer runs the runtime inline).
  bool AwaitCount(const std::string& call, int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return CountLocked(call) >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(10));
  }
  bool AwaitAnsweredCommits(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return answered_commits_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(10));
  }

  std::function<absl::StatusOr<Vote>(const std::string&)> vote_for =
      [](const std::string&) -> absl::StatusOr<Vote> { return Vote::kYes; };
  std::atomic<bool> commit_fails{false};
  std::atomic<bool> hold_prepares{false};

  // Phase 2 of `txid` fails until further notice.
  void Stick(const std::string& txid) {
    absl::MutexLock lock(&mu_);
    stuck_.insert(txid);
  }

  // Answers every held Prepare with `vote`.
  void ReleasePrepares(Vote vote) {
    std::vector<std::function<void(absl::StatusOr<Vote>)>> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto& done : held) done(vote);
  }

 private:
  void Record(std::string call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }
  int CountLocked(const std::string& call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(std::count(calls_.begin(), calls_.end(), call));
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_;
  std::vector<std::function<void(absl::StatusOr<Vote>)>> held_;
  absl::flat_hash_set<std::string> stuck_;
  int answered_commits_ = 0;
};

class RuntimeTest : public ::testing::Test {
 protected:
  void TearDown() override { StopAll(); }

  // Timers and the log writer call into the runtime: halt it, then stop
  // them, then destroy it.
  void StopAll() {
    if (runtime_) runtime_->Halt();
    log_.reset();
    timers_.reset();
    runtime_.reset();
  }

  void Start(uint64_t segment_bytes = 1 << 20) {
    StopAll();
    timers_ = std::make_unique<TimerQueue>();
    recovery_ = RecoveryState();
    wal::LogOptions options;
    options.dir = "/data/wal";
    options.fs = &fs_;
    options.segment_bytes = segment_bytes;
    options.checkpoint = [this] {
      return runtime_ ? runtime_->CheckpointRecords() : std::vector<wal::Record>{};
    };
    auto log = wal::Log::Open(options, [this](const wal::Record& r) {
      ASSERT_TRUE(recovery_.Apply(r.type, r.payload).ok());
    });
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = std::move(*log);
    RuntimeOptions runtime_options;
    runtime_options.engine.cluster_id = "c1";
    runtime_options.engine.epoch = ++epoch_;
    runtime_options.engine.phase2_backoff_initial = absl::Milliseconds(1);
    runtime_options.engine.phase2_backoff_max = absl::Milliseconds(5);
    // Each start its own secret, as the daemon draws one.
    if (!vote_secret_.empty()) {
      runtime_options.vote_secret = absl::StrCat(vote_secret_, ++starts_);
    }
    runtime_ =
        std::make_unique<Runtime>(runtime_options, log_.get(), &participants_, timers_.get());
    ASSERT_TRUE(runtime_->Recover(recovery_).ok());
  }

  // A transaction with branches a, b, c.
  std::string Begin3() {
    auto begun = runtime_->Begin(absl::Seconds(30));
    EXPECT_TRUE(begun.ok()) << begun.status();
    for (const char* p : {"a", "b", "c"}) {
      EXPECT_TRUE(runtime_->Enlist(begun->txid, {p, std::string(p) + ":1"}, false).ok());
    }
    return begun->txid;
  }

  absl::StatusOr<CommitResult> Commit(const std::string& txid) {
    return runtime_->Commit(txid, absl::Now() + absl::Seconds(10));
  }

  // Commit naming `named`, blocking.
  absl::StatusOr<CommitResult> CommitNamed(const std::string& txid,
                                           std::vector<NamedBranch> named) {
    absl::Notification done;
    absl::StatusOr<CommitResult> result;
    runtime_->CommitAsync(txid, std::move(named), absl::Now() + absl::Seconds(10),
                          [&](absl::StatusOr<CommitResult> r) {
                            result = std::move(r);
                            done.Notify();
                          });
    done.WaitForNotification();
    return result;
  }

  // Branch `participant` of `txid` named with a YES vote its agent signed
  // under `key` (by default the key the runtime gives that participant).
  NamedBranch Signed(const std::string& txid, const std::string& participant, uint64_t token,
                     const std::string& endpoint, std::string key = "") {
    if (key.empty()) key = runtime_->VoteKey(participant);
    return NamedBranch{BranchRef{participant, endpoint, token},
                       SignVote(key, VoteClaim{txid, participant, token, endpoint})};
  }

  // Simulates power loss of the coordinator: unsynced log bytes vanish.
  // `while_down` runs between the crash and the restart.
  void CrashAndRestart(const std::function<void()>& while_down = [] {}) {
    StopAll();
    fs_.Crash();
    while_down();
    Start();
  }

  // Power loss while the coordinator runs: unlike CrashAndRestart, the log
  // gets no clean close (whose sync would save every record written so far),
  // so whatever was not forced is gone.
  void PowerLossAndRestart(const std::function<void()>& while_down = [] {}) {
    if (runtime_) runtime_->Halt();
    fs_.Crash();
    StopAll();
    while_down();
    Start();
  }

  wal::FakeFileSystem fs_;
  FakeParticipants participants_;
  std::unique_ptr<TimerQueue> timers_;
  uint64_t epoch_ = 0;
  std::string vote_secret_ = "runtime-test-secret-";
  int starts_ = 0;
  RecoveryState recovery_;
  std::unique_ptr<wal::Log> log_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(RuntimeTest, CommittedTransactionSurvivesPowerLossOnceTheClientHeardCommitted) {
  Start();
  participants_.commit_fails = true;  // phase 2 cannot finish: no END
  std::string txid = Begin3();
  auto result = Commit(txid);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed);

  CrashAndRestart([this] { participants_.commit_fails = false; });
  ASSERT_EQ(recovery_.unfinished().count(txid), 1u);
  EXPECT_EQ(recovery_.unfinished().at(txid).branches.size(), 3u);
  // The recovered transaction was re-driven: phase 2 finished at every branch.
  auto view = runtime_->Describe(txid);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state, TxState::kCommitted);
  EXPECT_EQ(runtime_->QueryOutcome(txid, "b").value(), Outcome::kCommitted);
}

// A thread that may wait for the disk (a framed Commit's) writes the
// decision itself: everything up to the answer runs inside CommitAsync,
// re-entering the runtime from the log's callback, and the answer still
// means durable.
TEST_F(RuntimeTest, ACommitOnAThreadThatWritesTheLogIsAnsweredInsideTheCallAndDurable) {
  {
    // The EXPIRED mark written here too: the writer thread is then idle for
    // certain (it clears its batch only after that batch's callbacks).
    wal::WriteHereScope write_here;
    Start();
  }
  ASSERT_EQ(log_->stats().appender_batches, 1u);
  std::string txid = Begin3();
  bool answered = false;
  absl::StatusOr<CommitResult> result;
  {
    wal::WriteHereScope write_here;
    runtime_->CommitAsync(txid, {}, absl::Now() + absl::Seconds(10),
                          [&](absl::StatusOr<CommitResult> r) {
                            result = std::move(r);
                            answered = true;
                          });
  }
  ASSERT_TRUE(answered) << "the decision was not written on the committing thread";
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed);
  EXPECT_EQ(log_->stats().appender_batches, 2u);
  // Phase 2 ran from the callback too; its END was queued for the writer.
  EXPECT_EQ(participants_.count("commit a") + participants_.count("commit b") +
                participants_.count("commit c"),
            3);
  // The COMMIT record was synced before the answer: power loss keeps it.
  participants_.commit_fails = true;
  const std::string stuck = Begin3();
  {
    wal::WriteHereScope write_here;
    ASSERT_TRUE(Commit(stuck).ok());
  }
  PowerLossAndRestart([this] { participants_.commit_fails = false; });
  EXPECT_EQ(recovery_.unfinished().count(stuck), 1u);
  EXPECT_EQ(runtime_->QueryOutcome(stuck, "b").value(), Outcome::kCommitted);
}

TEST_F(RuntimeTest, SignedVotesInTheCommitStandForTheAgentsEnlists) {
  Start();
  const std::string txid = runtime_->Begin(absl::Seconds(30))->txid;
  absl::StatusOr<CommitResult> result =
      CommitNamed(txid, {Signed(txid, "a", 11, "a:1"), Signed(txid, "b", 12, "b:1")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed) << result->reason;
  // The proofs were the votes: no Prepare; phase 2 goes to the endpoints
  // the agents signed.
  EXPECT_EQ(participants_.count("prepare a") + participants_.count("prepare b"), 0);
  EXPECT_TRUE(participants_.AwaitCount("commit a at a:1", 1));
  EXPECT_TRUE(participants_.AwaitCount("commit b at b:1", 1));
  // A proof beside a branch that enlisted the usual way: both count.
  const std::string mixed = runtime_->Begin(absl::Seconds(30))->txid;
  ASSERT_TRUE(runtime_->Enlist(mixed, {"c", "c:1", 13}, /*prepared=*/true, true).ok());
  result = CommitNamed(mixed, {Signed(mixed, "a", 21, "a:1"), {{"c", "", 13}, ""}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed) << result->reason;
}

TEST_F(RuntimeTest, AVoteProofThatDoesNotVerifyFailsTheCommitAndDecidesNothing) {
  Start();
  const std::string txid = runtime_->Begin(absl::Seconds(30))->txid;
  const NamedBranch good = Signed(txid, "b", 12, "b:1");
  std::vector<NamedBranch> forgeries;
  // Another endpoint than the one signed (phase 2 sent elsewhere).
  forgeries.push_back(Signed(txid, "a", 11, "a:1"));
  forgeries.back().ref.endpoint = "elsewhere:1";
  // Another token (a branch the agent lost).
  forgeries.push_back(Signed(txid, "a", 11, "a:1"));
  forgeries.back().ref.token = 99;
  // Signed with participant b's key for a's name.
  forgeries.push_back(Signed(txid, "a", 11, "a:1", runtime_->VoteKey("b")));
  // Signed for another txid.
  forgeries.push_back(Signed(txid, "a", 11, "a:1"));
  forgeries.back().vote_proof = Signed("c1.1.999", "a", 11, "a:1").vote_proof;
  // Made up.
  forgeries.push_back(NamedBranch{{"a", "a:1", 11}, std::string(kVoteProofBytes, 'x')});
  for (size_t i = 0; i < forgeries.size(); ++i) {
    SCOPED_TRACE(i);
    absl::StatusOr<CommitResult> result = CommitNamed(txid, {good, forgeries[i]});
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_THAT(result.status().message(), ::testing::HasSubstr("participant a"));
  }
  // Nothing changed: no branch joined, nothing was decided, and the
  // client may still abort (or commit with the right proofs).
  absl::StatusOr<TransactionView> view = runtime_->Describe(txid);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state, TxState::kActive);
  EXPECT_TRUE(view->branches.empty());
  absl::StatusOr<CommitResult> result = CommitNamed(txid, {good, Signed(txid, "a", 11, "a:1")});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->committed) << result->reason;
}

TEST_F(RuntimeTest, AnAbortNamingSignedBranchesReachesThemToo) {
  Start();
  const std::string txid = runtime_->Begin(absl::Seconds(30))->txid;
  NamedBranch forged = Signed(txid, "b", 12, "b:1");
  forged.ref.endpoint = "elsewhere:1";
  ASSERT_TRUE(runtime_->Abort(txid, {Signed(txid, "a", 11, "a:1"), forged}).ok());
  EXPECT_TRUE(participants_.AwaitCount("abort a", 1));
  // Only proven branches are called: the forged one's endpoint is not.
  EXPECT_EQ(participants_.count("abort b"), 0);
  absl::StatusOr<TransactionView> view = runtime_->Describe(txid);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state, TxState::kAborted);
}

TEST_F(RuntimeTest, VoteProofsForATxidOfAnEarlierEpochAreIgnored) {
  Start();
  const std::string txid = runtime_->Begin(absl::Seconds(30))->txid;
  const NamedBranch a = Signed(txid, "a", 11, "a:1");
  const NamedBranch b = Signed(txid, "b", 12, "b:1");
  CrashAndRestart();  // a new epoch and a new secret
  // The transaction died with the old epoch: the Commit says so, as for
  // any Commit of it, instead of calling the old proofs forged.
  absl::StatusOr<CommitResult> result = CommitNamed(txid, {a, b});
  EXPECT_NE(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_FALSE(result.ok() && result->committed);
  EXPECT_EQ(participants_.count("commit a"), 0);
}

// A client made a txid up and an agent signed for it; the agent's
// question about it was answered ABORTED and it rolled back. That txid is
// never issued, so the old proof can never join a later transaction.
TEST_F(RuntimeTest, AProofForATxidAskedAboutBeforeItWasIssuedNeverCommits) {
  Start();
  absl::StatusOr<Txid> issued = ParseTxid(runtime_->Begin(absl::Seconds(30))->txid);
  ASSERT_TRUE(issued.ok()) << issued.status();
  const std::string made_up = Txid{issued->cluster, issued->epoch, issued->sequence + 2}.ToString();
  const NamedBranch a = Signed(made_up, "a", 11, "a:1");
  EXPECT_EQ(runtime_->QueryOutcome(made_up, "a").value(), Outcome::kAborted);
  for (int i = 0; i < 3; ++i) EXPECT_NE(runtime_->Begin(absl::Seconds(30))->txid, made_up);
  absl::StatusOr<CommitResult> result = CommitNamed(made_up, {a});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->committed);  // presumed abort, as the agent was told
  EXPECT_EQ(participants_.count("commit a"), 0);
}

TEST_F(RuntimeTest, WithoutAVoteSecretNoKeyIsGivenAndNoProofIsTaken) {
  vote_secret_.clear();
  Start();
  EXPECT_EQ(runtime_->VoteKey("a"), "");
  const std::string txid = runtime_->Begin(absl::Seconds(30))->txid;
  const NamedBranch made_up{{"a", "a:1", 11}, SignVote("", VoteClaim{txid, "a", 11, "a:1"})};
  absl::StatusOr<CommitResult> result = CommitNamed(txid, {made_up});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
}

TEST_F(RuntimeTest, ConfigCentreSettingsChangeTheEngineWhileItRuns) {
  Start();
  ASSERT_TRUE(ApplyCoordinatorSetting(runtime_.get(), "tx_timeout",
                                      cluster::SettingValue::Duration(absl::Seconds(3)))
                  .ok());
  ASSERT_TRUE(ApplyCoordinatorSetting(runtime_.get(), "prepare_timeout",
                                      cluster::SettingValue::Duration(absl::Milliseconds(700)))
                  .ok());
  ASSERT_TRUE(ApplyCoordinatorSetting(runtime_.get(), "phase2_retry_max",
                                      cluster::SettingValue::Duration(absl::Seconds(2)))
                  .ok());
  const absl::Time before = absl::Now();
  absl::StatusOr<BeginResult> begun = runtime_->Begin(absl::ZeroDuration());
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_GE(begun->deadline, before + absl::Seconds(3));
  EXPECT_LT(begun->deadline, before + absl::Seconds(13));  // not the 30s default
  const EnginePolicy policy = runtime_->policy();
  EXPECT_EQ(policy.prepare_timeout, absl::Milliseconds(700));
  EXPECT_EQ(policy.phase2_backoff_max, absl::Seconds(2));
  EXPECT_EQ(ApplyCoordinatorSetting(runtime_.get(), "lock_timeout",
                                    cluster::SettingValue::Duration(absl::Seconds(1)))
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RuntimeTest, NewTxidsAfterARestartNeverRepeatOldOnes) {
  Start();
  std::string first = Begin3();
  CrashAndRestart();
  std::string second = Begin3();
  EXPECT_NE(first, second);
  EXPECT_EQ(runtime_->QueryOutcome(first, "a").value(), Outcome::kAborted);  // presumed
}

TEST_F(RuntimeTest, EndedTransactionIsNotRedrivenAfterRestart) {
  Start();
  std::string txid = Begin3();
  ASSERT_TRUE(Commit(txid)->committed);
  // Commit answers before phase 2 is sent: let it finish (and END be
  // appended) before phase 2 starts failing.
  ASSERT_TRUE(participants_.AwaitAnsweredCommits(3));
  ASSERT_EQ(runtime_->Describe(txid)->state, TxState::kCommitted);
  // END is not forced; a later synced record carries it to disk.
  std::string other = Begin3();
  participants_.commit_fails = true;
  ASSERT_TRUE(Commit(other)->committed);
  CrashAndRestart();
  EXPECT_EQ(recovery_.unfinished().count(txid), 0u);
  EXPECT_EQ(recovery_.unfinished().count(other), 1u);
}

TEST_F(RuntimeTest, NoVoteAbortsAndLogsNothing) {
  Start();
  participants_.vote_for = [](const std::string& p) -> absl::StatusOr<Vote> {
    if (p == "b") return absl::AbortedError("voted NO");
    return Vote::kYes;
  };
  const uint64_t logged_at_start = log_->stats().records;  // the EXPIRED mark
  std::string txid = Begin3();
  auto result = Commit(txid);
  ASSERT_TRUE(result.ok());
  EXPECT_FALSE(result->committed);
  EXPECT_THAT(result->reason, ::testing::HasSubstr("b"));
  EXPECT_EQ(log_->stats().records, logged_at_start);
  EXPECT_EQ(participants_.count("abort a"), 1);
}

TEST_F(RuntimeTest, FailedLogSyncLeavesTheOutcomeUnknownAndRefusesNewWork) {
  Start();
  fs_.InjectFault(wal::FsOp::kSync, 1, absl::InternalError("fdatasync: Input/output error"),
                  /*sticky=*/true);
  std::string txid = Begin3();
  auto result = Commit(txid);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(result.status().message()), ::testing::HasSubstr("outcome unknown"));
  EXPECT_EQ(participants_.count("commit a"), 0);
  EXPECT_EQ(participants_.count("abort a"), 0);
  EXPECT_EQ(runtime_->Begin(absl::Seconds(1)).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RuntimeTest, CheckpointKeepsAnUnfinishedCommitWhenOldSegmentsGo) {
  Start(/*segment_bytes=*/4096);
  std::string stuck = Begin3();
  participants_.Stick(stuck);
  ASSERT_TRUE(Commit(stuck)->committed);
  // Enough finished transactions to rotate several times.
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(Commit(Begin3())->committed);
  EXPECT_LE(log_->stats().segments, 3u);
  // The stuck one still needs phase 2: a restart must find it.
  CrashAndRestart();
  EXPECT_EQ(recovery_.unfinished().count(stuck), 1u);
  // Plus at most the last transaction, whose END no synced batch carried.
  EXPECT_LE(recovery_.unfinished().size(), 2u);
}

// The branch `p` of `view`; fails the test if there is none.
BranchView BranchOf(const TransactionView& view, const std::string& p) {
  for (const BranchView& b : view.branches) {
    if (b.ref.participant == p) return b;
  }
  ADD_FAILURE() << "no branch " << p << " in " << view.txid;
  return BranchView{};
}

TEST_F(RuntimeTest, MarkedBranchStaysMarkedAfterPowerLossAndIsNotRedriven) {
  Start();
  std::string txid = Begin3();
  participants_.Stick(txid);  // phase 2 fails everywhere: no END
  ASSERT_TRUE(Commit(txid)->committed);
  auto marked = runtime_->MarkBranchDone(txid, "a", "restored a's row by hand");
  ASSERT_TRUE(marked.ok()) << marked.status();
  EXPECT_EQ(marked->transaction.state, TxState::kCommitting);
  EXPECT_TRUE(BranchOf(marked->transaction, "a").heuristic);

  int commits_to_a = 0;
  int commits_to_b = 0;
  PowerLossAndRestart([&] {
    commits_to_a = participants_.count("commit a");
    commits_to_b = participants_.count("commit b");
  });
  ASSERT_EQ(recovery_.unfinished().count(txid), 1u);
  ASSERT_EQ(recovery_.marks(txid).size(), 1u);
  EXPECT_EQ(recovery_.marks(txid)[0].participant, "a");
  EXPECT_EQ(recovery_.marks(txid)[0].note, "restored a's row by hand");
  auto view = runtime_->Describe(txid);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state, TxState::kCommitting);
  EXPECT_TRUE(BranchOf(*view, "a").acknowledged);
  EXPECT_TRUE(BranchOf(*view, "a").heuristic);
  EXPECT_FALSE(BranchOf(*view, "b").acknowledged);
  EXPECT_EQ(runtime_->QueryOutcome(txid, "a").value(), Outcome::kCommitted);
  // Phase 2 is re-driven to b and c, never to a.
  EXPECT_TRUE(participants_.AwaitCount("commit b", commits_to_b + 3));
  EXPECT_EQ(participants_.count("commit a"), commits_to_a);
}

TEST_F(RuntimeTest, MarksOnEveryBranchEndTheTransactionEvenIfTheEndIsLost) {
  Start();
  std::string txid = Begin3();
  participants_.Stick(txid);
  ASSERT_TRUE(Commit(txid)->committed);
  for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(runtime_->MarkBranchDone(txid, p, "").ok());
  EXPECT_EQ(runtime_->Describe(txid)->state, TxState::kCommitted);

  // END is not forced: power loss drops it; the forced marks remain.
  int commits = 0;
  PowerLossAndRestart([&] { commits = static_cast<int>(participants_.calls().size()); });
  ASSERT_EQ(recovery_.marks(txid).size(), 3u);
  auto view = runtime_->Describe(txid);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state, TxState::kCommitted);
  EXPECT_TRUE(BranchOf(*view, "b").heuristic);
  EXPECT_EQ(runtime_->QueryOutcome(txid, "c").value(), Outcome::kCommitted);
  EXPECT_EQ(participants_.calls().size(), static_cast<size_t>(commits));  // no phase 2
  // Recovery logged the END: a second restart finds nothing to do.
  std::string later = Begin3();
  ASSERT_TRUE(Commit(later)->committed);  // a synced batch carries the END
  PowerLossAndRestart();
  EXPECT_EQ(recovery_.unfinished().count(txid), 0u);
}

TEST_F(RuntimeTest, MarkDoneOnAFailedLogFailsAndLeavesTheBranchUnmarked) {
  Start();
  std::string txid = Begin3();
  participants_.Stick(txid);
  ASSERT_TRUE(Commit(txid)->committed);
  fs_.InjectFault(wal::FsOp::kSync, 1, absl::InternalError("fdatasync: Input/output error"),
                  /*sticky=*/true);
  auto marked = runtime_->MarkBranchDone(txid, "a", "");
  EXPECT_EQ(marked.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(marked.status().message()), ::testing::HasSubstr("not marked done"));
  EXPECT_THAT(std::string(marked.status().message()), ::testing::HasSubstr("Input/output error"));
  auto view = runtime_->Describe(txid);
  ASSERT_TRUE(view.ok());
  EXPECT_FALSE(BranchOf(*view, "a").acknowledged);
  EXPECT_FALSE(BranchOf(*view, "a").heuristic);
  // Later marks fail at once the same way; the restart re-drives a.
  EXPECT_EQ(runtime_->MarkBranchDone(txid, "b", "").status().code(),
            absl::StatusCode::kUnavailable);
  PowerLossAndRestart([this] { fs_.ClearFaults(); });
  EXPECT_TRUE(recovery_.marks(txid).empty());
  EXPECT_FALSE(BranchOf(*runtime_->Describe(txid), "a").heuristic);
}

TEST_F(RuntimeTest, CheckpointKeepsAMarkWhenOldSegmentsGo) {
  Start(/*segment_bytes=*/4096);
  std::string stuck = Begin3();
  participants_.Stick(stuck);
  ASSERT_TRUE(Commit(stuck)->committed);
  ASSERT_TRUE(runtime_->MarkBranchDone(stuck, "b", "fixed").ok());
  const uint64_t rotations = log_->stats().rotations;
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(Commit(Begin3())->committed);
  EXPECT_GE(log_->stats().rotations, rotations + 2);
  EXPECT_LE(log_->stats().segments, 3u);  // the MARK_DONE's segment is gone

  PowerLossAndRestart();
  ASSERT_EQ(recovery_.unfinished().count(stuck), 1u);
  ASSERT_EQ(recovery_.marks(stuck).size(), 1u);
  EXPECT_EQ(recovery_.marks(stuck)[0].participant, "b");
  EXPECT_EQ(recovery_.marks(stuck)[0].note, "fixed");
  EXPECT_TRUE(BranchOf(*runtime_->Describe(stuck), "b").heuristic);
  // And again across the next checkpoints, from the recovered state.
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(Commit(Begin3())->committed);
  PowerLossAndRestart();
  ASSERT_EQ(recovery_.marks(stuck).size(), 1u);
  EXPECT_TRUE(BranchOf(*runtime_->Describe(stuck), "b").heuristic);
}

TEST_F(RuntimeTest, RecoveryIgnoresAMarkWithoutAnOpenCommit) {
  RecoveryState state;
  auto mark = [](const std::string& txid, const std::string& p) {
    return EncodeMarkDone({txid, p, ""});
  };
  ASSERT_TRUE(state.Apply(kRecordMarkDone, mark("c1.1.1", "a")).ok());  // no COMMIT
  ASSERT_TRUE(state.Apply(kRecordCommit, EncodeCommit({"c1.1.2", {{"a", "a:1"}}})).ok());
  ASSERT_TRUE(state.Apply(kRecordEnd, EncodeEnd({"c1.1.2"})).ok());
  ASSERT_TRUE(state.Apply(kRecordMarkDone, mark("c1.1.2", "a")).ok());  // after its END
  ASSERT_TRUE(state.Apply(kRecordCommit, EncodeCommit({"c1.1.3", {{"a", "a:1"}}})).ok());
  ASSERT_TRUE(state.Apply(kRecordMarkDone, mark("c1.1.3", "zz")).ok());  // no such branch
  ASSERT_TRUE(state.Apply(kRecordMarkDone, mark("c1.1.3", "a")).ok());
  ASSERT_TRUE(state.Apply(kRecordMarkDone, mark("c1.1.3", "a"))
                  .ok());  // a checkpoint copy, then the original
  EXPECT_TRUE(state.marks("c1.1.1").empty());
  EXPECT_TRUE(state.marks("c1.1.2").empty());
  EXPECT_EQ(state.marks("c1.1.3").size(), 1u);
  EXPECT_EQ(state
                .Apply(kRecordMarkDone,
                       "\x05"
                       "ab")
                .code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(RuntimeTest, CommitPastItsWaitDeadlineSaysItGoesOnAndLaterCommits) {
  Start();
  participants_.hold_prepares = true;
  std::string txid = Begin3();
  auto result = runtime_->Commit(txid, absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(runtime_->Describe(txid)->state, TxState::kPreparing);
  participants_.ReleasePrepares(Vote::kYes);
  auto again = Commit(txid);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->committed);
}

TEST_F(RuntimeTest, AnsweredCommitLeavesNoTimerForItsDeadline) {
  Start();
  // The votes are held so that each Commit is still waiting when its
  // deadline's timer is set; then released. Returns the timers left.
  auto timers_added_by_commit = [this](absl::Time deadline) -> size_t {
    participants_.hold_prepares = true;
    std::string txid = Begin3();
    const size_t before = timers_->pending();
    absl::Notification answered;
    absl::StatusOr<CommitResult> result;
    runtime_->CommitAsync(txid, deadline, [&](absl::StatusOr<CommitResult> r) {
      result = std::move(r);
      answered.Notify();
    });
    participants_.hold_prepares = false;
    participants_.ReleasePrepares(Vote::kYes);
    EXPECT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(result.ok() && result->committed) << result.status();
    return timers_->pending() - before;
  };
  // Whatever timers the engine arms for a commit, a Commit with no deadline
  // adds none of its own: the yardstick for one with a deadline.
  const size_t without_deadline = timers_added_by_commit(absl::InfiniteFuture());
  EXPECT_EQ(timers_added_by_commit(absl::Now() + absl::Hours(1)), without_deadline);
}

// A decision log whose appends become durable only when the test says so.
class HeldLog final : public wal::DecisionLog {
 public:
  void Append(uint8_t type, std::string, bool sync,
              std::function<void(absl::Status)> done) override {
    absl::MutexLock lock(&mu_);
    types_.push_back(type);
    if (done) held_.push_back(std::move(done));
  }
  absl::Status health() const override { return absl::OkStatus(); }

  // Makes every record appended so far durable; returns how many callbacks ran.
  size_t Release() {
    std::vector<std::function<void(absl::Status)>> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto& done : held) done(absl::OkStatus());
    return held.size();
  }
  std::vector<uint8_t> types() {
    absl::MutexLock lock(&mu_);
    return types_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint8_t> types_;
  std::vector<std::function<void(absl::Status)>> held_;
};

// A scheduler whose clock moves only when the test advances it; due timers
// run then, on the test's thread.
class ManualScheduler final : public Scheduler {
 public:
  absl::Time Now() override { return now_; }
  TimerId Schedule(absl::Time at, std::function<void()> fn) override {
    timers_.emplace(next_id_, std::make_pair(at, std::move(fn)));
    return next_id_++;
  }
  void Cancel(TimerId id) override { timers_.erase(id); }
  void Advance(absl::Duration d) {
    now_ += d;
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->second.first > now_) {
        ++it;
        continue;
      }
      std::function<void()> fn = std::move(it->second.second);
      it = timers_.erase(it);
      fn();
    }
  }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1000000);
  TimerId next_id_ = 1;
  std::map<TimerId, std::pair<absl::Time, std::function<void()>>> timers_;
};

class HeldRuntimeTest : public ::testing::Test {
 protected:
  HeldRuntimeTest() {
    options_.engine.cluster_id = "c1";
    options_.on_decided = [this](const std::string& txid, bool committed) {
      decided_.emplace_back(txid, committed);
    };
    options_.on_commit_returned = [this](absl::Duration latency, const absl::Status&, bool) {
      latencies_.push_back(latency);
    };
  }

  // Starts the runtime on a new log (no EXPIRED mark yet); `ready` gets
  // its readiness.
  void Start(absl::Status* ready, bool* called) {
    runtime_ = std::make_unique<Runtime>(options_, &log_, &participants_, &scheduler_);
    runtime_->RecoverAsync(RecoveryState(), [ready, called](absl::Status s) {
      *ready = std::move(s);
      *called = true;
    });
  }
  void StartReady() {
    absl::Status ready;
    bool called = false;
    Start(&ready, &called);
    log_.Release();
    ASSERT_TRUE(called && ready.ok()) << ready;
  }
  std::string Begin3() {
    auto begun = runtime_->Begin(absl::Seconds(30));
    EXPECT_TRUE(begun.ok()) << begun.status();
    for (const char* p : {"a", "b", "c"}) {
      EXPECT_TRUE(runtime_->Enlist(begun->txid, {p, std::string(p) + ":1"}, false).ok());
    }
    return begun->txid;
  }

  RuntimeOptions options_;
  HeldLog log_;
  FakeParticipants participants_;
  ManualScheduler scheduler_;
  std::vector<std::pair<std::string, bool>> decided_;
  std::vector<absl::Duration> latencies_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(HeldRuntimeTest, RefusesBeginAndCommitUntilItsExpiredMarkIsDurable) {
  absl::Status ready = absl::UnknownError("not called");
  bool called = false;
  Start(&ready, &called);
  EXPECT_FALSE(called);
  EXPECT_EQ(log_.types(), std::vector<uint8_t>{kRecordExpired});
  absl::StatusOr<BeginResult> early = runtime_->Begin(absl::Seconds(1));
  EXPECT_EQ(early.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(early.status().message()), ::testing::HasSubstr("still starting"));
  absl::StatusOr<CommitResult> commit = absl::UnknownError("not called");
  runtime_->CommitAsync("c1.1.1", absl::InfiniteFuture(),
                        [&](absl::StatusOr<CommitResult> r) { commit = std::move(r); });
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kUnavailable);

  EXPECT_EQ(log_.Release(), 1u);
  EXPECT_TRUE(called);
  EXPECT_TRUE(ready.ok()) << ready;
  EXPECT_TRUE(runtime_->Begin(absl::Seconds(1)).ok());
}

TEST_F(HeldRuntimeTest, MarkBranchDoneAsyncAnswersOnlyOnceItsRecordIsDurable) {
  StartReady();
  std::string txid = Begin3();
  participants_.Stick(txid);  // phase 2 fails: the transaction stays COMMITTING
  absl::StatusOr<CommitResult> commit = absl::UnknownError("not called");
  runtime_->CommitAsync(txid, absl::InfiniteFuture(),
                        [&](absl::StatusOr<CommitResult> r) { commit = std::move(r); });
  log_.Release();  // the COMMIT record
  ASSERT_TRUE(commit.ok() && commit->committed) << commit.status();

  std::optional<absl::StatusOr<AdminResult>> marked;
  runtime_->MarkBranchDoneAsync(txid, "a", "fixed by hand",
                                [&](absl::StatusOr<AdminResult> r) { marked = std::move(r); });
  EXPECT_FALSE(marked.has_value());
  EXPECT_FALSE(BranchOf(*runtime_->Describe(txid), "a").acknowledged);
  EXPECT_EQ(log_.types().back(), kRecordMarkDone);
  log_.Release();
  ASSERT_TRUE(marked.has_value());
  ASSERT_TRUE(marked->ok()) << marked->status();
  EXPECT_TRUE(BranchOf((*marked)->transaction, "a").heuristic);
  EXPECT_TRUE(BranchOf(*runtime_->Describe(txid), "a").acknowledged);
}

TEST_F(HeldRuntimeTest, ReadsEveryTimeFromItsScheduler) {
  StartReady();
  auto begun = runtime_->Begin(absl::Seconds(30));
  ASSERT_TRUE(begun.ok());
  EXPECT_EQ(begun->deadline, scheduler_.Now() + absl::Seconds(30));

  std::string txid = Begin3();
  absl::StatusOr<CommitResult> commit = absl::UnknownError("not called");
  runtime_->CommitAsync(txid, absl::InfiniteFuture(),
                        [&](absl::StatusOr<CommitResult> r) { commit = std::move(r); });
  scheduler_.Advance(absl::Seconds(3));  // the COMMIT record takes 3 s to be durable
  log_.Release();
  ASSERT_TRUE(commit.ok() && commit->committed);
  ASSERT_EQ(latencies_.size(), 1u);
  EXPECT_EQ(latencies_[0], absl::Seconds(3));
  EXPECT_EQ(runtime_->Describe(txid)->decided, scheduler_.Now());

  // A Commit's deadline is a timer of that scheduler.
  participants_.hold_prepares = true;
  std::string late = Begin3();
  runtime_->CommitAsync(late, scheduler_.Now() + absl::Seconds(1),
                        [&](absl::StatusOr<CommitResult> r) { commit = std::move(r); });
  scheduler_.Advance(absl::Milliseconds(999));
  EXPECT_TRUE(commit.ok());  // still the first answer
  scheduler_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kDeadlineExceeded);
  participants_.hold_prepares = false;
  participants_.ReleasePrepares(Vote::kYes);
  log_.Release();
}

TEST_F(HeldRuntimeTest, OnDecidedHearsEveryDecisionInOrder) {
  StartReady();
  participants_.vote_for = [](const std::string& p) -> absl::StatusOr<Vote> {
    if (p == "c") return absl::AbortedError("voted NO");
    return Vote::kYes;
  };
  std::string aborted = Begin3();
  runtime_->CommitAsync(aborted, absl::InfiniteFuture(), [](absl::StatusOr<CommitResult>) {});
  participants_.vote_for = [](const std::string&) -> absl::StatusOr<Vote> { return Vote::kYes; };
  std::string committed = Begin3();
  runtime_->CommitAsync(committed, absl::InfiniteFuture(), [](absl::StatusOr<CommitResult>) {});
  EXPECT_EQ(decided_.size(), 1u);  // the COMMIT record is not durable yet
  log_.Release();
  EXPECT_THAT(decided_, ::testing::ElementsAre(std::make_pair(aborted, false),
                                               std::make_pair(committed, true)));
}

}  // namespace
}  // namespace txcoord::coordinator
