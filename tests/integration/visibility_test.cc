// Atomic visibility across three agents, checked in the database files
// themselves (separate read-only SQLite connections): a global transaction's
// writes appear nowhere before Commit, everywhere after it, and never after
// Abort.
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "client/transaction.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/eventually.h"
#include "harness/free_port.h"
#include "harness/lock_barrier.h"
#include "harness/sqlite_inspect.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/ops/scrape.h"

namespace txcoord::testing {
namespace {

constexpr char kValueOfRow1[] = "SELECT v FROM items WHERE id = 1";
constexpr char kRowCount[] = "SELECT COUNT(*) FROM items";

class VisibilityTest : public ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    for (AgentClient* agent : agents_) {
      absl::StatusOr<ExecuteResult> created = agent->Execute(
          "", {{"CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)", {}},
               {"INSERT INTO items (id, v) VALUES (1, 0)", {}}});
      ASSERT_TRUE(created.ok()) << created.status();
    }
  }

  // Row 1's value and the row count in every agent's file, e.g. "0/1 0/1 0/1".
  std::string FileState() {
    std::string state;
    for (int i = 0; i < cluster_->agent_count(); ++i) {
      absl::StatusOr<int64_t> value = QueryInt64(cluster_->agent_db(i), kValueOfRow1);
      absl::StatusOr<int64_t> rows = QueryInt64(cluster_->agent_db(i), kRowCount);
      EXPECT_TRUE(value.ok() && rows.ok()) << value.status() << " " << rows.status();
      absl::StrAppend(&state, i == 0 ? "" : " ", value.value_or(-1), "/", rows.value_or(-1));
    }
    return state;
  }

  // Returns once every branch that touched rows 1 and 2 finished phase 2.
  void AwaitPhase2(int64_t rows) {
    absl::Status status = testing::AwaitPhase2(
        *coordinator_, agents_, {"UPDATE items SET v = v + 1", {}}, rows, absl::Seconds(30));
    ASSERT_TRUE(status.ok()) << status;
  }
};

TEST_F(VisibilityTest, WritesAppearInEveryFileOnlyAfterCommit) {
  absl::StatusOr<std::string> txid = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(txid.ok()) << txid.status();
  for (AgentClient* agent : agents_) {
    absl::StatusOr<ExecuteResult> wrote =
        agent->Execute(*txid, {{"UPDATE items SET v = 42 WHERE id = 1", {}},
                               {"INSERT INTO items (id, v) VALUES (2, 7)", {}}});
    ASSERT_TRUE(wrote.ok()) << wrote.status();
    // The branch reads its own writes...
    absl::StatusOr<SqlResult> own = agent->ExecuteOne(*txid, kValueOfRow1);
    ASSERT_TRUE(own.ok()) << own.status();
    ASSERT_EQ(own->rows.size(), 1u);
    EXPECT_EQ(own->rows[0][0], SqlValue(int64_t{42}));
    // ...and nobody else does, through the agent or in the file.
    absl::StatusOr<SqlResult> other = agent->ExecuteOne("", kValueOfRow1);
    ASSERT_TRUE(other.ok()) << other.status();
    ASSERT_EQ(other->rows.size(), 1u);
    EXPECT_EQ(other->rows[0][0], SqlValue(int64_t{0}));
  }
  absl::StatusOr<v1::Transaction> before = coordinator_->GetTransaction(*txid);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->state(), v1::TX_STATE_ACTIVE);
  EXPECT_EQ(before->branches_size(), 3);
  EXPECT_EQ(FileState(), "0/1 0/1 0/1");

  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
  ASSERT_TRUE(commit.ok()) << commit.status();
  ASSERT_TRUE(commit->committed) << commit->reason;
  // Commit answers once the decision is durable; each agent applies it a
  // little later. Wait for that, then every file has every write.
  AwaitPhase2(/*rows=*/2);
  EXPECT_EQ(FileState(), "42/2 42/2 42/2");
  absl::StatusOr<v1::Transaction> after = coordinator_->GetTransaction(*txid);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE(after->state() == v1::TX_STATE_COMMITTING || after->state() == v1::TX_STATE_COMMITTED)
      << v1::TxState_Name(after->state());
}

TEST_F(VisibilityTest, AbortedWritesNeverAppear) {
  absl::StatusOr<std::string> txid = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(txid.ok()) << txid.status();
  for (AgentClient* agent : agents_) {
    absl::StatusOr<ExecuteResult> wrote =
        agent->Execute(*txid, {{"UPDATE items SET v = 99 WHERE id = 1", {}},
                               {"INSERT INTO items (id, v) VALUES (2, 7)", {}}});
    ASSERT_TRUE(wrote.ok()) << wrote.status();
  }
  ASSERT_TRUE(coordinator_->Abort(*txid).ok());
  EXPECT_EQ(FileState(), "0/1 0/1 0/1");
  // Also once the agents have dropped the branches (their locks are gone).
  AwaitPhase2(/*rows=*/1);
  EXPECT_EQ(FileState(), "0/1 0/1 0/1");
  absl::StatusOr<v1::Transaction> aborted = coordinator_->GetTransaction(*txid);
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  EXPECT_EQ(aborted->state(), v1::TX_STATE_ABORTED);
  // A late Commit may answer ABORTED or refuse (FAILED_PRECONDITION); it
  // must never commit.
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
  EXPECT_TRUE(commit.ok() ? !commit->committed : absl::IsFailedPrecondition(commit.status()))
      << (commit.ok() ? "committed after Abort" : commit.status().ToString());
  EXPECT_EQ(FileState(), "0/1 0/1 0/1");
}

TEST_F(VisibilityTest, ReleasedBranchFreesItsRowAtOnceAndTheTransactionAborts) {
  absl::StatusOr<std::string> txid = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(txid.ok()) << txid.status();
  ASSERT_TRUE(agents_[0]->ExecuteOne(*txid, "UPDATE items SET v = 42 WHERE id = 1").ok());
  ASSERT_TRUE(agents_[1]->ExecuteOne(*txid, "UPDATE items SET v = 42 WHERE id = 1").ok());

  absl::StatusOr<ReleaseResult> released = agents_[0]->Release(*txid);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(released->released) << released->detail;
  // The row lock is gone: a local write takes it without waiting.
  ExecuteOptions no_wait;
  no_wait.lock_timeout = absl::Milliseconds(1);
  EXPECT_TRUE(agents_[0]->ExecuteOne("", "UPDATE items SET v = 5 WHERE id = 1", {}, no_wait).ok());
  absl::StatusOr<ReleaseResult> again = agents_[0]->Release(*txid);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->released);

  // The released branch votes NO: nothing of the transaction commits.
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_FALSE(commit->committed);
  EXPECT_EQ(FileState(), "5/1 0/1 0/1");
}

TEST_F(VisibilityTest, ReleaseLeavesAPreparedBranchToTheCoordinator) {
  absl::StatusOr<std::string> txid = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(txid.ok()) << txid.status();
  ExecuteOptions prepare;
  prepare.prepare = true;
  ASSERT_TRUE(
      agents_[0]->ExecuteOne(*txid, "UPDATE items SET v = 42 WHERE id = 1", {}, prepare).ok());
  absl::StatusOr<ReleaseResult> released = agents_[0]->Release(*txid);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_FALSE(released->released);
  EXPECT_THAT(released->detail, ::testing::HasSubstr("prepared"));
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_TRUE(commit->committed) << commit->reason;
}

// The property AwaitPhase2 (and so every check after Commit here) relies on:
// a branch's row locks hold other writers off until its phase 2, and a
// writer that waited re-runs on the committed row.
TEST_F(VisibilityTest, AWriteWaitsForAnotherBranchsRowLockUntilPhase2) {
  absl::StatusOr<std::string> first = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(agents_[0]->ExecuteOne(*first, "UPDATE items SET v = 42 WHERE id = 1").ok());

  absl::StatusOr<std::string> second = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(second.ok()) << second.status();
  ExecuteOptions short_wait;
  short_wait.lock_timeout = absl::Milliseconds(300);
  absl::StatusOr<SqlResult> blocked =
      agents_[0]->ExecuteOne(*second, "UPDATE items SET v = v + 1 WHERE id = 1", {}, short_wait);
  EXPECT_TRUE(absl::IsAborted(blocked.status())) << blocked.status();
  EXPECT_THAT(std::string(blocked.status().message()), ::testing::HasSubstr("lock"));

  // The failed statement left the second branch as it was, so it can go on.
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*first);
  ASSERT_TRUE(commit.ok() && commit->committed) << commit.status();
  ExecuteOptions long_wait;
  long_wait.lock_timeout = absl::Seconds(30);
  absl::StatusOr<SqlResult> after =
      agents_[0]->ExecuteOne(*second, "UPDATE items SET v = v + 1 WHERE id = 1", {}, long_wait);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->changes, 1);
  absl::StatusOr<SqlResult> seen = agents_[0]->ExecuteOne(*second, kValueOfRow1);
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_EQ(seen->rows.size(), 1u);
  EXPECT_EQ(seen->rows[0][0], SqlValue(int64_t{43})) << "the waiting write must see the commit";
  ASSERT_TRUE(coordinator_->Abort(*second).ok());
}

// Transaction::ExecuteAll runs a transaction's branches at once: a branch
// held up by a row lock at one agent keeps none of the others waiting, and
// all of them commit together.
TEST_F(VisibilityTest, ExecuteAllRunsTheBranchesAtOnce) {
  absl::StatusOr<std::string> holder = coordinator_->Begin(absl::Seconds(30));
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE(agents_[0]->ExecuteOne(*holder, "UPDATE items SET v = 42 WHERE id = 1").ok());

  absl::StatusOr<Transaction> tx = coordinator_->BeginTransaction(absl::Seconds(60));
  ASSERT_TRUE(tx.ok()) << tx.status();
  ExecuteOptions long_wait;
  long_wait.lock_timeout = absl::Seconds(30);
  std::vector<Transaction::Branch> branches;
  for (AgentClient* agent : agents_) {
    branches.push_back({agent, {{"UPDATE items SET v = v + 1 WHERE id = 1", {}}}, long_wait});
  }
  std::vector<absl::StatusOr<ExecuteResult>> results;
  std::thread runner([&] { results = tx->ExecuteAll(branches); });
  // Branch 0 waits for the holder's lock; branches 1 and 2, sent with it,
  // enlist meanwhile (one after another, they would wait behind it).
  int enlisted = 0;
  EXPECT_TRUE(Eventually(
      [&] {
        absl::StatusOr<v1::Transaction> seen = coordinator_->GetTransaction(tx->txid());
        enlisted = seen.ok() ? seen->branches_size() : -1;
        return enlisted >= 2;
      },
      absl::Seconds(20)))
      << "the free branches did not run while the first one waited (branches: " << enlisted << ")";
  EXPECT_EQ(enlisted, 2);
  absl::StatusOr<CommitResult> held = coordinator_->Commit(*holder);
  ASSERT_TRUE(held.ok() && held->committed) << held.status();
  runner.join();
  ASSERT_EQ(results.size(), 3u);
  for (const absl::StatusOr<ExecuteResult>& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->results[0].changes, 1);
  }
  absl::StatusOr<CommitResult> commit = tx->Commit();
  ASSERT_TRUE(commit.ok() && commit->committed) << commit.status();
  AwaitPhase2(/*rows=*/1);
  EXPECT_EQ(FileState(), "43/1 1/1 1/1");
}

TEST_F(VisibilityTest, ExecuteAllRefusesAnAgentNamedTwice) {
  absl::StatusOr<Transaction> tx = coordinator_->BeginTransaction(absl::Seconds(30));
  ASSERT_TRUE(tx.ok()) << tx.status();
  std::vector<absl::StatusOr<ExecuteResult>> results =
      tx->ExecuteAll({{agents_[0], {{"UPDATE items SET v = 1", {}}}, {}},
                      {agents_[0], {{"UPDATE items SET v = 2", {}}}, {}}});
  ASSERT_EQ(results.size(), 2u);
  for (const absl::StatusOr<ExecuteResult>& result : results) {
    EXPECT_TRUE(absl::IsInvalidArgument(result.status())) << result.status();
  }
  ASSERT_TRUE(tx->Abort().ok());
  EXPECT_EQ(FileState(), "0/1 0/1 0/1");
}

TEST_F(VisibilityTest, ATransactionNamesItsBranchesInCommit) {
  absl::StatusOr<Transaction> tx = coordinator_->BeginTransaction(absl::Seconds(30));
  ASSERT_TRUE(tx.ok()) << tx.status();
  std::vector<std::string> participants;
  for (AgentClient* agent : agents_) {
    absl::StatusOr<ExecuteResult> wrote =
        tx->Execute(*agent, {{"UPDATE items SET v = 5 WHERE id = 1", {}}});
    ASSERT_TRUE(wrote.ok()) << wrote.status();
    EXPECT_NE(wrote->branch_token, 0u);
    participants.push_back(wrote->participant);
  }
  EXPECT_THAT(participants, ::testing::Each(::testing::Not(::testing::IsEmpty())));
  absl::StatusOr<CommitResult> commit = tx->Commit();
  ASSERT_TRUE(commit.ok() && commit->committed) << commit.status() << " " << commit->reason;
  absl::StatusOr<v1::Transaction> seen = coordinator_->GetTransaction(tx->txid());
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->branches_size(), 3);
  AwaitPhase2(/*rows=*/1);
  EXPECT_EQ(FileState(), "5/1 5/1 5/1");
}

// The coordinator commits only the branches the client names: a branch
// enlisted for a named Execute but left out, or named under another token,
// aborts. (An enlistment that arrives after such a Commit is refused
// instead: its agent rolls the branch back.)
TEST_F(VisibilityTest, ACommitThatDoesNotNameEveryBranchAsItWasWrittenAborts) {
  ExecuteOptions named;
  named.named_in_commit = true;
  for (const bool wrong_token : {false, true}) {
    absl::StatusOr<BeginResult> begun = coordinator_->BeginWith(absl::Seconds(30));
    ASSERT_TRUE(begun.ok()) << begun.status();
    ASSERT_TRUE(begun->checks_named_branches);
    std::vector<NamedBranch> branches;
    for (AgentClient* agent : {agents_[0], agents_[1]}) {
      absl::StatusOr<ExecuteResult> wrote =
          agent->Execute(begun->txid, {{"UPDATE items SET v = 9 WHERE id = 1", {}}}, named);
      ASSERT_TRUE(wrote.ok()) << wrote.status();
      ASSERT_NE(wrote->branch_token, 0u);
      branches.push_back({wrote->participant, wrote->branch_token});
    }
    // Both enlistments are in before the Commit.
    ASSERT_TRUE(Eventually(
        [&] {
          absl::StatusOr<v1::Transaction> seen = coordinator_->GetTransaction(begun->txid);
          return seen.ok() && seen->branches_size() == 2;
        },
        absl::Seconds(20)));
    if (wrong_token) {
      branches[1].branch_token += 1;
    } else {
      branches.pop_back();
    }
    absl::StatusOr<CommitResult> commit = coordinator_->Commit(begun->txid, branches);
    ASSERT_TRUE(commit.ok()) << commit.status();
    EXPECT_FALSE(commit->committed);
    EXPECT_THAT(commit->reason,
                ::testing::HasSubstr(wrong_token ? "the agent lost the branch" : "did not name"));
    // Both branches are rolled back (the second one too, though left out).
    AwaitPhase2(/*rows=*/1);
    EXPECT_EQ(FileState(), "0/1 0/1 0/1");
  }
}

// During an upgrade some agents predate named branches: they ignore
// named_in_commit, enlist before they answer, and report no branch, so the
// client's Commit names only the new agents' branches. On the wire such an
// agent's Enlist is a plain one, as for an Execute sent without
// named_in_commit, which is what agent #2 is sent here: its branch commits
// with the named ones.
TEST_F(VisibilityTest, ABranchFromAnAgentThatCannotNameItCommitsWithTheNamedOnes) {
  absl::StatusOr<BeginResult> begun = coordinator_->BeginWith(absl::Seconds(30));
  ASSERT_TRUE(begun.ok()) << begun.status();
  ASSERT_TRUE(begun->checks_named_branches);
  ExecuteOptions named;
  named.named_in_commit = true;
  std::vector<NamedBranch> branches;
  for (AgentClient* agent : {agents_[0], agents_[1]}) {
    absl::StatusOr<ExecuteResult> wrote =
        agent->Execute(begun->txid, {{"UPDATE items SET v = 7 WHERE id = 1", {}}}, named);
    ASSERT_TRUE(wrote.ok()) << wrote.status();
    NameBranch(*wrote, &branches);
  }
  absl::StatusOr<ExecuteResult> old_style =
      agents_[2]->Execute(begun->txid, {{"UPDATE items SET v = 7 WHERE id = 1", {}}});
  ASSERT_TRUE(old_style.ok()) << old_style.status();
  ASSERT_EQ(branches.size(), 2u);
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(begun->txid, branches);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_TRUE(commit->committed) << commit->reason;
  AwaitPhase2(/*rows=*/1);
  EXPECT_EQ(FileState(), "7/1 7/1 7/1");
}

// An agent the coordinator cannot call (it advertises an address where
// nothing listens: a partition between the two) never hears its
// transaction's Abort, and its unprepared branch holds its row. The
// agent's resolver asks about the idle branch, hears ABORTED and frees the
// row long before --branch_idle_timeout (here longer than the test).
class UndeliveredAbortTest : public VisibilityTest {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = VisibilityTest::Options();
    options.agents = 1;
    absl::StatusOr<int> nobody = PickFreeLoopbackPort();
    EXPECT_TRUE(nobody.ok()) << nobody.status();
    options.agent_flags = {"--branch_idle_timeout=10m", "--metrics_listen=127.0.0.1:0"};
    options.per_agent_flags = {{absl::StrCat("--advertise=127.0.0.1:", nobody.value_or(1))}};
    return options;
  }
};

TEST_F(UndeliveredAbortTest, TheAgentAsksAboutAnIdleBranchAndFreesItsRowOnceAborted) {
  absl::StatusOr<std::string> first = coordinator_->Begin(absl::Seconds(60));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(agents_[0]->Execute(*first, {{"UPDATE items SET v = 1 WHERE id = 1", {}}}).ok());
  // Aborted at the coordinator; its Abort to the agent fails.
  ASSERT_TRUE(coordinator_->Abort(*first).ok());

  absl::StatusOr<std::string> second = coordinator_->Begin(absl::Seconds(60));
  ASSERT_TRUE(second.ok()) << second.status();
  ExecuteOptions wait_long;
  wait_long.lock_timeout = absl::Seconds(45);
  absl::StatusOr<ExecuteResult> wrote =
      agents_[0]->Execute(*second, {{"UPDATE items SET v = 2 WHERE id = 1", {}}}, wait_long);
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  ASSERT_TRUE(agents_[0]->Release(*second).ok());
  EXPECT_EQ(QueryInt64(cluster_->agent_db(0), kValueOfRow1).value_or(-1), 0);
  // Counted apart from Aborts that arrived: a sign of calls to this agent failing.
  absl::StatusOr<std::string> address = MetricsAddressFromLog(cluster_->agent_log(0));
  ASSERT_TRUE(address.ok()) << address.status();
  absl::StatusOr<Scrape> scrape = ScrapeMetrics(*address);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->Value("txagent_aborts_total{reason=\"asked\"}").value_or(-1), 1);
  EXPECT_EQ(scrape->Value("txagent_aborts_total{reason=\"aborted\"}").value_or(-1), 0);
}

}  // namespace
}  // namespace txcoord::testing
