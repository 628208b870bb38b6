// The agent's group commit (participant/group_commit.h) on the simulator's disk:
// SQLite commits without syncing, so everything the participant answers as
// done must have been synced by GroupCommit first. Each case crashes the disk
// right after the answer, under many seeds (a crash keeps a random prefix of
// the unsynced writes, often none), and reopens.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "participant/participant.h"
#include "sim/sim_vfs.h"

namespace txcoord::sim {
namespace {

using participant::Outcome;
using participant::Participant;
using participant::Vote;

class AcceptingEnlister final : public participant::Enlister {
 public:
  absl::Status Enlist(const std::string&, uint64_t, bool) override { return absl::OkStatus(); }
};

class DurabilityTest : public ::testing::TestWithParam<int> {
 protected:
  DurabilityTest() : vfs_(SimVfs::Install()), dir_(absl::StrCat("/durability-", GetParam())) {}
  ~DurabilityTest() override { vfs_.RemoveAll(dir_); }

  std::unique_ptr<Participant> Open() {
    participant::ParticipantOptions options;
    options.db_path = dir_ + "/db";
    options.name = "p";
    options.branch_idle_timeout = absl::ZeroDuration();
    options.default_lock_timeout = absl::ZeroDuration();
    auto opened = Participant::Open(options, &enlister_);
    EXPECT_TRUE(opened.ok()) << opened.status();
    return opened.ok() ? *std::move(opened) : nullptr;
  }
  // Power loss right now: unsynced writes are kept only by chance.
  std::unique_ptr<Participant> CrashAndReopen(std::unique_ptr<Participant> p) {
    vfs_.Freeze(dir_);
    p.reset();
    std::mt19937_64 rng(GetParam());
    vfs_.Crash(dir_, rng);
    return Open();
  }
  static std::vector<SqlStatement> Sql(const std::string& sql) { return {SqlStatement{sql, {}}}; }
  static std::string Count(Participant& p, const std::string& table) {
    auto result = p.Execute("", Sql("SELECT count(*) FROM " + table), false, absl::ZeroDuration());
    if (!result.ok()) return result.status().ToString();
    return std::to_string(std::get<int64_t>(result->results.at(0).rows.at(0).at(0)));
  }

  SimVfs& vfs_;
  const std::string dir_;
  AcceptingEnlister enlister_;
};

TEST_P(DurabilityTest, AnsweredLocalWritesYesVotesAndCommitsSurvivePowerLoss) {
  std::unique_ptr<Participant> p = Open();
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(
      p->Execute("", Sql("CREATE TABLE t(id INTEGER PRIMARY KEY)"), false, absl::ZeroDuration())
          .ok());
  ASSERT_TRUE(p->Execute("", Sql("INSERT INTO t VALUES (1)"), false, absl::ZeroDuration()).ok());
  p = CrashAndReopen(std::move(p));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(Count(*p, "t"), "1") << "an acknowledged local write was lost";

  // A YES vote, from Prepare and from Execute(prepare=true).
  ASSERT_TRUE(
      p->Execute("c1.1.1", Sql("INSERT INTO t VALUES (2)"), false, absl::ZeroDuration()).ok());
  ASSERT_EQ(p->Prepare("c1.1.1").value(), Vote::kYes);
  auto early = p->Execute("c1.1.2", Sql("INSERT INTO t VALUES (3)"), true, absl::ZeroDuration());
  ASSERT_TRUE(early.ok()) << early.status();
  ASSERT_EQ(early->vote, Vote::kYes);
  p = CrashAndReopen(std::move(p));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->ListPrepared().size(), 2u) << "a YES vote was sent for a prepare that was lost";

  // Phase-2 Commit and one-phase commit.
  ASSERT_TRUE(p->Commit("c1.1.1").ok());
  ASSERT_TRUE(p->Commit("c1.1.2").ok());
  ASSERT_TRUE(
      p->Execute("c1.1.3", Sql("INSERT INTO t VALUES (4)"), false, absl::ZeroDuration()).ok());
  ASSERT_EQ(p->CommitOnePhase("c1.1.3").value(), Outcome::kCommitted);
  p = CrashAndReopen(std::move(p));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(Count(*p, "t"), "4") << "an acknowledged commit was lost";
  EXPECT_TRUE(p->ListPrepared().empty());
  EXPECT_EQ(p->CommitOnePhase("c1.1.3").value(), Outcome::kCommitted);  // its stored outcome
}

TEST_P(DurabilityTest, AnsweredBatchVotesAndCommitsSurvivePowerLoss) {
  using participant::BatchAnswer;
  using participant::BatchEntry;
  using participant::BranchOp;
  std::unique_ptr<Participant> p = Open();
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(
      p->Execute("", Sql("CREATE TABLE t(id INTEGER PRIMARY KEY)"), false, absl::ZeroDuration())
          .ok());
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(p->Execute(absl::StrCat("c1.1.", i),
                           Sql(absl::StrCat("INSERT INTO t VALUES (", i, ")")), false,
                           absl::ZeroDuration())
                    .ok());
  }
  ASSERT_EQ(p->Prepare("c1.1.1").value(), Vote::kYes);
  ASSERT_EQ(p->Prepare("c1.1.2").value(), Vote::kYes);
  // One batch commits two and prepares two; its answers promise all four.
  std::vector<BatchAnswer> answers = p->RunBatch({{BranchOp::kCommit, "c1.1.1"},
                                                  {BranchOp::kPrepare, "c1.1.3"},
                                                  {BranchOp::kCommit, "c1.1.2"},
                                                  {BranchOp::kPrepare, "c1.1.4"}});
  ASSERT_EQ(answers.size(), 4u);
  for (const BatchAnswer& answer : answers) ASSERT_TRUE(answer.status.ok()) << answer.status;
  ASSERT_EQ(answers[1].vote, Vote::kYes);
  ASSERT_EQ(answers[3].vote, Vote::kYes);
  p = CrashAndReopen(std::move(p));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(Count(*p, "t"), "2") << "a commit answered in a batch was lost";
  EXPECT_EQ(p->ListPrepared().size(), 2u) << "a YES vote answered in a batch was lost";
}

// kill -9 leaves a commit written but not synced (here: its sync lags, as if
// the process died inside it); the OS keeps it, so the next process reads
// it as committed and may answer a retried Commit about it. That answer
// must not come before the commit is durable.
TEST_P(DurabilityTest, RestartedAgentSyncsWhatItsPredecessorLeftUnsynced) {
  std::unique_ptr<Participant> p = Open();
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(
      p->Execute("", Sql("CREATE TABLE t(id INTEGER PRIMARY KEY)"), false, absl::ZeroDuration())
          .ok());
  ASSERT_TRUE(
      p->Execute("c1.1.1", Sql("INSERT INTO t VALUES (1)"), false, absl::ZeroDuration()).ok());
  ASSERT_EQ(p->Prepare("c1.1.1").value(), Vote::kYes);
  vfs_.SetLaggingSync(dir_, true);
  ASSERT_TRUE(p->Commit("c1.1.1").ok());  // written, its sync did not make it durable
  vfs_.Freeze(dir_);
  p.reset();  // kill -9: the page cache survives
  vfs_.Thaw(dir_);
  vfs_.SetLaggingSync(dir_, false);

  p = Open();
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->ListPrepared().empty());  // it reads the commit back...
  ASSERT_TRUE(p->Commit("c1.1.1").ok());   // ...and acknowledges the retried Commit
  p = CrashAndReopen(std::move(p));        // then the power goes
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->ListPrepared().empty()) << "an acknowledged phase-2 Commit was lost";
  EXPECT_EQ(Count(*p, "t"), "1");
}

INSTANTIATE_TEST_SUITE_P(Seeds, DurabilityTest, ::testing::Range(0, 16));

}  // namespace
}  // namespace txcoord::sim
