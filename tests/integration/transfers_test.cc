// Concurrent transfers across three agents conserve money: each transfer is
// one global transaction touching all three databases, so any partial
// commit would change the total in the files.
#include <cstdint>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/transaction.h"
#include "common/txid.h"
#include "gtest/gtest.h"
#include "harness/bank.h"
#include "harness/eventually.h"
#include "harness/sqlite_inspect.h"
#include "tests/integration/cluster_fixture.h"
#include "tests/ops/scrape.h"

namespace txcoord::testing {
namespace {

constexpr int kThreads = 8;
constexpr int kTransfersPerThread = 50;

// Parameter: early prepare (each branch prepared by its Execute) or not.
class TransfersTest : public ClusterFixture, public ::testing::WithParamInterface<bool> {};

TEST_P(TransfersTest, ConcurrentTransfersConserveMoneyAndLeaveNothingPrepared) {
  BankOptions options;
  options.accounts = 100;
  // Contention on purpose: hot rows make transfers wait for each other's
  // locks, and deadlocks across agents end in lock timeouts.
  options.hot_accounts = 5;
  options.hot_share = 0.2;
  options.lock_timeout = absl::Milliseconds(500);
  options.early_prepare = GetParam();
  Bank bank(coordinator_.get(), agents_, options);
  ASSERT_TRUE(bank.CreateAccounts().ok());
  absl::StatusOr<int64_t> before = Bank::SumBalances(cluster_->agent_dbs());
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(*before, bank.TotalMoney());

  TransferTally tally = RunTransfers(bank, kThreads, kTransfersPerThread);
  const std::string summary =
      absl::StrCat("committed ", tally.committed, ", balance check ",
                   tally.counts[TransferOutcome::kBalanceCheck], ", lock conflict ",
                   tally.counts[TransferOutcome::kLockConflict]);
  std::cout << "transfers: " << summary << "\n";
  SCOPED_TRACE(summary);
  EXPECT_GT(tally.committed, 0);
  // In a healthy cluster a transfer aborts only for money or locks.
  EXPECT_TRUE(tally.unexpected.empty())
      << tally.unexpected.size() << " unexpected outcomes, e.g. " << tally.unexpected.front();

  ExpectSettledAndConserved(bank, *cluster_);
  // Money moved at all (a bank where nothing commits conserves money too).
  absl::StatusOr<int64_t> untouched = SumQueryInt64(
      cluster_->agent_dbs(),
      absl::StrCat("SELECT COUNT(*) FROM accounts WHERE balance = ", options.initial_balance));
  ASSERT_TRUE(untouched.ok()) << untouched.status();
  EXPECT_LT(*untouched, 3 * options.accounts);
}

INSTANTIATE_TEST_SUITE_P(Prepare, TransfersTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "EarlyPrepare" : "CoordinatorPrepare";
                         });

// With ClientOptions::reserve_txids the client hands out txids from blocks
// it reserved and makes no Begin call (but while another thread reserves):
// each transaction begins at the coordinator on its first Enlist or Commit,
// or is used up by an Abort that comes first (a transfer that failed before
// writing).
class ReservedTxidsTest : public ClusterFixture {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = ClusterFixture::Options();
    options.coordinator_flags = {"--metrics_listen=127.0.0.1:0"};
    return options;
  }
};

TEST_F(ReservedTxidsTest, TransfersCommitOnReservedTxidsWithFewBeginCalls) {
  constexpr int kClients = 4;
  constexpr int kEach = 25;
  ClientOptions client_options;
  client_options.reserve_txids = 16;
  Client client(cluster_->coordinator_address(), client_options);
  BankOptions options;
  options.accounts = 40;
  options.max_amount = 1200;  // some debits fail their balance check before writing
  options.lock_timeout = absl::Milliseconds(500);
  options.early_prepare = true;
  options.name_branches = 0.5;  // some Commits arrive before their branches' Enlists
  Bank bank(&client, agents_, options);
  ASSERT_TRUE(bank.CreateAccounts().ok());

  const TransferTally tally = RunTransfers(bank, kClients, kEach);
  const int committed = tally.committed;
  EXPECT_GT(committed, 0);
  EXPECT_TRUE(tally.unexpected.empty())
      << tally.unexpected.size() << " unexpected outcomes, e.g. " << tally.unexpected.front();
  // Read before AwaitPhase2, whose barrier is a transaction of its own.
  absl::StatusOr<std::string> address = MetricsAddressFromLog(cluster_->coordinator_log());
  ASSERT_TRUE(address.ok()) << address.status();
  absl::StatusOr<Scrape> scrape = ScrapeMetrics(*address);
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  const double reserved = scrape->Value("txcoord_txids_reserved_total").value_or(-1);
  const double begun = scrape->Value("txcoord_reserved_txids_begun_total").value_or(-1);
  const double unused = scrape->Value("txcoord_reserved_txids_unused_total").value_or(-1);
  const double decided = scrape->Value("txcoord_commits_total").value_or(-1) +
                         scrape->Value("txcoord_aborts_total").value_or(-1);
  SCOPED_TRACE(absl::StrCat("reserved ", reserved, ", begun ", begun, ", used up unbegun ", unused,
                            ", decided ", decided, ", committed ", committed));
  // Every transfer reached the coordinator: its reserved txid began or
  // was used up by its Abort, or (while another thread was reserving the
  // next block) it called Begin, and then it was decided too.
  EXPECT_GE(reserved, begun + unused);
  EXPECT_EQ(decided + unused, kClients * kEach);
  // Most took a reserved txid: Begin calls only during refills.
  EXPECT_GT(begun + unused, kClients * kEach / 2);
  EXPECT_EQ(scrape->Value("txcoord_commits_total").value_or(-1), committed);
  ExpectSettledAndConserved(bank, *cluster_);
}

// The bank's audits rely on every branch of a transfer holding a lock on an
// accounts row (the barrier of AwaitPhase2 waits for those). A debit that
// fails its balance check changes no row, so its branch must write nothing
// else either: with early prepare it would otherwise be prepared with only
// its ledger row, and stay in doubt past the barrier whenever its Abort is
// lost (a coordinator crash).
class BalanceCheckTest : public ClusterFixture {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = ClusterFixture::Options();
    options.agent_flags = {"--metrics_listen=127.0.0.1:0"};
    return options;
  }
};

TEST_F(BalanceCheckTest, ADebitThatFailsItsBalanceCheckPreparesNothing) {
  BankOptions options;
  options.accounts = 10;
  options.initial_balance = 1;  // every amount is at least 2: every debit fails
  options.ledger = true;
  options.early_prepare = true;
  Bank bank(coordinator_.get(), agents_, options);
  ASSERT_TRUE(bank.CreateAccounts().ok());
  absl::BitGen rng;
  for (int i = 0; i < 6; ++i) {
    TransferResult result = bank.Transfer(rng);
    ASSERT_EQ(result.outcome, TransferOutcome::kBalanceCheck) << result.detail;
  }
  double read_only = 0;
  for (int i = 0; i < cluster_->agent_count(); ++i) {
    absl::StatusOr<std::string> address = MetricsAddressFromLog(cluster_->agent_log(i));
    ASSERT_TRUE(address.ok()) << address.status();
    absl::StatusOr<Scrape> scrape = ScrapeMetrics(*address);
    ASSERT_TRUE(scrape.ok()) << scrape.status();
    EXPECT_EQ(scrape->Value("txagent_prepares_total{vote=\"yes\"}").value_or(-1), 0)
        << cluster_->agent_name(i) << " prepared a branch that changed no account";
    read_only += scrape->Value("txagent_prepares_total{vote=\"read_only\"}").value_or(0);
  }
  // Each failed debit was still prepared early, and voted read-only.
  EXPECT_EQ(read_only, 6);
}

// The epoch a txid was issued in; 0 (and a failure) if it is malformed.
uint64_t EpochOf(const std::string& txid) {
  absl::StatusOr<Txid> parsed = ParseTxid(txid);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->epoch : 0;
}

// A coordinator that restarts forgets the txids it reserved (its new
// epoch never issued them). The client's block from before is dead: the
// first transfer on it fails, and the client drops the rest of the block
// rather than fail every transfer until the block's half-life. Parameter:
// the branches are named in Commit (the coordinator's presumed abort says
// so) or not (the agent passes on the coordinator's refusal of the Enlist).
class ReservedTxidsRestartTest : public ClusterFixture,
                                 public ::testing::WithParamInterface<bool> {};

TEST_P(ReservedTxidsRestartTest, ABlockFromBeforeACoordinatorCrashIsDroppedAfterOneFailure) {
  ClientOptions client_options;
  client_options.reserve_txids = 64;
  Client client(cluster_->coordinator_address(), client_options);
  BankOptions options;
  options.accounts = 20;
  options.max_amount = 10;  // no balance check fails
  // A branch whose vote the restarted coordinator refused keeps its rows
  // locked until the agent learns the outcome (it asks at once); a later
  // transfer may wait for that.
  options.lock_timeout = absl::Seconds(5);
  options.early_prepare = true;
  options.name_branches = GetParam() ? 1.0 : 0.0;
  Bank bank(&client, agents_, options);
  ASSERT_TRUE(bank.CreateAccounts().ok());
  absl::BitGen rng;
  TransferResult before = bank.Transfer(rng);
  ASSERT_EQ(before.outcome, TransferOutcome::kCommitted) << before.detail;
  // No AwaitPhase2 here: its barrier is a transaction that locks every
  // row and is aborted, and a crash right after that Abort leaves the
  // barrier's unprepared branches holding the rows until an agent's
  // Enlist shows it the new epoch, which a transfer waiting for those rows
  // cannot send. The restarted coordinator finishes the transfer's phase 2.
  ASSERT_TRUE(cluster_->KillCoordinator().ok());
  ASSERT_TRUE(cluster_->StartCoordinator().ok());

  constexpr int kAfter = 10;
  std::vector<TransferResult> after;
  for (int i = 0; i < kAfter; ++i) after.push_back(bank.Transfer(rng));
  // The block's next txid (its second) meets the new epoch and fails...
  EXPECT_EQ(after[0].outcome, TransferOutcome::kAborted) << after[0].detail;
  EXPECT_EQ(EpochOf(after[0].txid), EpochOf(before.txid))
      << "the first transfer after the crash ran on a txid of the old epoch";
  // ...and every later transfer runs on a txid of the new epoch and commits.
  for (int i = 1; i < kAfter; ++i) {
    EXPECT_EQ(after[i].outcome, TransferOutcome::kCommitted)
        << "transfer " << i << " after the crash, " << after[i].txid << ": " << after[i].detail;
    EXPECT_NE(EpochOf(after[i].txid), EpochOf(before.txid))
        << "transfer " << i << " after the crash ran on the old epoch";
  }
  ExpectSettledAndConserved(bank, *cluster_);
}

INSTANTIATE_TEST_SUITE_P(Branches, ReservedTxidsRestartTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "NamedInCommit" : "EnlistedByTheAgents";
                         });

// txagent --phase2_sync_delay: a branch's phase-2 Commit answer waits for
// the next transaction's prepare to sync the agent's log rather than
// syncing it itself, and is still answered, so every transaction ends.
class Phase2SyncDelayTest : public ClusterFixture {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = ClusterFixture::Options();
    // Long enough that only the last transaction's Commits end by waiting.
    options.agent_flags = {"--metrics_listen=127.0.0.1:0", "--phase2_sync_delay=1s"};
    options.coordinator_flags = {"--metrics_listen=127.0.0.1:0"};
    return options;
  }
  double AgentMetric(int i, const std::string& metric) {
    absl::StatusOr<double> value = MetricInLog(cluster_->agent_log(i), metric);
    EXPECT_TRUE(value.ok()) << value.status();
    return value.ok() ? *value : -1;
  }
};

TEST_F(Phase2SyncDelayTest, PhaseTwoCommitsShareTheNextTransactionsPrepareSync) {
  constexpr int kTransactions = 10;
  for (AgentClient* agent : agents_) {
    ASSERT_TRUE(agent->ExecuteOne("", "CREATE TABLE t (id INTEGER PRIMARY KEY)").ok());
  }
  std::vector<double> syncs_before;
  for (int i = 0; i < cluster_->agent_count(); ++i) {
    syncs_before.push_back(AgentMetric(i, "txagent_wal_syncs_total"));
  }
  ExecuteOptions prepare;
  prepare.prepare = true;
  for (int k = 0; k < kTransactions; ++k) {
    absl::StatusOr<Transaction> tx = coordinator_->BeginTransaction(absl::Seconds(30));
    ASSERT_TRUE(tx.ok()) << tx.status();
    std::vector<Transaction::Branch> branches;
    for (AgentClient* agent : agents_) {
      branches.push_back({agent, {{"INSERT INTO t (id) VALUES (?1)", {int64_t{k}}}}, prepare});
    }
    for (const absl::StatusOr<ExecuteResult>& result : tx->ExecuteAll(branches)) {
      ASSERT_TRUE(result.ok()) << result.status();
    }
    absl::StatusOr<CommitResult> committed = tx->Commit();
    ASSERT_TRUE(committed.ok()) << committed.status();
    ASSERT_TRUE(committed->committed) << committed->reason;
  }
  // Every phase 2 is acknowledged, the last Commits once their delay has
  // passed: the coordinator forgets every transaction.
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<double> open =
            MetricInLog(cluster_->coordinator_log(), "txcoord_open_transactions");
        return open.ok() && *open == 0;
      },
      absl::Seconds(20)));
  for (int i = 0; i < cluster_->agent_count(); ++i) {
    SCOPED_TRACE(absl::StrCat("agent ", i));
    const std::string waits = "txagent_phase2_sync_waits_total";
    const double shared = AgentMetric(i, waits + "{how=\"shared\"}");
    const double own = AgentMetric(i, waits + "{how=\"own\"}");
    const double syncs = AgentMetric(i, "txagent_wal_syncs_total") - syncs_before[i];
    SCOPED_TRACE(absl::StrCat(shared, " phase-2 answers shared a sync, ", own, " synced, ", syncs,
                              " syncs"));
    // Each prepare syncs; a Commit syncs itself only when no prepare came
    // in time (the last one). Without the delay each would sync: two per
    // transaction.
    EXPECT_GE(shared, 2);
    EXPECT_GE(own, 1);  // the last transaction's
    EXPECT_LT(syncs, 2 * kTransactions - 1);
  }
  absl::StatusOr<int64_t> rows = SumQueryInt64(cluster_->agent_dbs(), "SELECT COUNT(*) FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, 3 * kTransactions);
}

}  // namespace
}  // namespace txcoord::testing
