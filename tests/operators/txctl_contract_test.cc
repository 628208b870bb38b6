// What scripts rely on: `txctl --json` prints valid JSON, and the exit code
// says what happened (0 ok, 1 usage, 2 not found, 3 refused, 4 unreachable,
// 6 WAL corruption). Also the offline WAL commands on a real log.
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/temp_dir.h"
#include "tests/operators/operators_fixture.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;

class TxctlContractTest : public OperatorsTest {
 protected:
  // A committed transaction, phase 2 finished.
  std::string Committed(int64_t value) {
    const std::string txid = BeginAndWrite(value);
    absl::StatusOr<txcoord::CommitResult> result = client_->Commit(txid);
    EXPECT_TRUE(result.ok() && result->committed);
    EXPECT_TRUE(Eventually([&] {
      return Json(Txctl({"show", txid, "--json"})).Get("state")->str == "COMMITTED";
    }));
    return txid;
  }
};

TEST_F(TxctlContractTest, JsonOutputOfEveryReportParses) {
  const std::string txid = Committed(3);
  const std::string active = BeginAndWrite(4);
  JsonValue list = Json(Txctl({"list", "--json"}));
  ASSERT_NE(list.Get("transactions"), nullptr);
  EXPECT_EQ(list.Get("transactions")->size(), 1u);
  EXPECT_EQ(list.Get("transactions")->at(0).Get("state")->str, "ACTIVE");
  EXPECT_EQ(Json(Txctl({"list", "--json", "--finished", "--all"})).Get("transactions")->size(), 2u);
  JsonValue show = Json(Txctl({"show", txid, "--json"}));
  EXPECT_EQ(show.Get("txid")->str, txid);
  EXPECT_EQ(show.Get("branches")->size(), 2u);
  JsonValue in_doubt = Json(TxctlAt(1, {"in-doubt", "--json"}));
  EXPECT_EQ(in_doubt.Get("branches")->size(), 0u);
  EXPECT_EQ(Json(TxctlAt(1, {"heuristics", "--json"})).Get("decisions")->size(), 0u);
  JsonValue aborted = Json(Txctl({"abort", active, "--json", "--reason=test"}));
  EXPECT_EQ(aborted.Get("transaction")->Get("state")->str, "ABORTED");
  EXPECT_THAT(aborted.Get("transaction")->Get("reason")->str, HasSubstr("test"));
}

TEST_F(TxctlContractTest, ExitCodesSayWhatHappened) {
  const std::string txid = Committed(5);
  const std::string cluster = txid.substr(0, txid.rfind('.'));
  // 1: usage.
  EXPECT_EQ(Txctl({"frobnicate"}).exit_code, 1);
  EXPECT_EQ(TxctlAt(0, {"resolve", txid}).exit_code, 1);  // neither --commit nor --abort
  EXPECT_EQ(Txctl({"show"}).exit_code, 1);
  EXPECT_EQ(Txctl({"show", "not-a-txid"}).exit_code, 1);
  EXPECT_EQ(Txctl({"list", "--state=sleeping"}).exit_code, 1);
  EXPECT_EQ(Txctl({"in-doubt"}).exit_code, 1);  // no --agent
  // 2: not found.
  TxctlResult missing = Txctl({"show", cluster + ".999999", "--json"});
  EXPECT_EQ(missing.exit_code, 2) << missing;
  EXPECT_EQ(Json(missing).Get("error")->Get("code")->str, "NOT_FOUND");
  EXPECT_EQ(Txctl({"mark-done", cluster + ".999999", "agent0"}).exit_code, 2);
  // 3: refused (wrong state).
  EXPECT_EQ(Txctl({"abort", txid}).exit_code, 3);
  EXPECT_EQ(Txctl({"retry", txid}).exit_code, 3);
  const std::string active = BeginAndWrite(6);
  EXPECT_EQ(Txctl({"mark-done", active, "agent0"}).exit_code, 3);
  EXPECT_EQ(TxctlAt(0, {"resolve", active, "--commit"}).exit_code, 3);  // not in doubt
  // 4: unreachable.
  TxctlResult down = RunTxctl({"list", "--json", "--coordinator=127.0.0.1:1", "--timeout=2s"});
  EXPECT_EQ(down.exit_code, 4) << down;
  EXPECT_EQ(Json(down).Get("error")->Get("exit_code")->number, 4);
  EXPECT_EQ(RunTxctl({"in-doubt", "--agent=127.0.0.1:1", "--timeout=2s"}).exit_code, 4);
  // 0: help everywhere.
  EXPECT_EQ(Txctl({"help", "resolve"}).exit_code, 0);
  EXPECT_THAT(Txctl({"wal", "check", "--help"}).out, HasSubstr("Exit codes"));
}

TEST_F(TxctlContractTest, WalCheckAndDumpReadARealLogAndReportCorruption) {
  const std::string txid = Committed(8);
  // Offline means offline: the coordinator is stopped (and its END flushed).
  ASSERT_TRUE(cluster_->StopCoordinator().ok());
  const std::string data_dir = cluster_->coordinator_data_dir();
  TxctlResult check = Txctl({"wal", "check", data_dir});
  ASSERT_EQ(check.exit_code, 0) << check;
  EXPECT_THAT(check.out, HasSubstr("log is healthy"));
  // The daemon writes zeros ahead of its appends (--wal_preallocate_bytes):
  // the last segment ends in them, which is no torn tail.
  JsonValue checked = Json(Txctl({"wal", "check", data_dir, "--json"}));
  ASSERT_FALSE(checked.Get("segments")->items.empty());
  const JsonValue& last = checked.Get("segments")->items.back();
  EXPECT_GT(last.Get("zero_tail_bytes")->number, 0);
  EXPECT_FALSE(last.Get("torn_tail")->boolean);
  EXPECT_THAT(check.out, HasSubstr("zero bytes written ahead of appends"));
  TxctlResult dump = Txctl({"wal", "dump", data_dir});
  ASSERT_EQ(dump.exit_code, 0) << dump;
  EXPECT_THAT(dump.out, HasSubstr("COMMIT"));
  EXPECT_THAT(dump.out, HasSubstr(txid));
  JsonValue records = Json(Txctl({"wal", "dump", data_dir, "--json"}));
  EXPECT_TRUE(records.Get("ok")->boolean);
  EXPECT_EQ(records.Get("unfinished")->size(), 0u);
  const JsonValue* commit = nullptr;
  for (const JsonValue& r : records.Get("records")->items) {
    if (r.Get("type")->str == "COMMIT" && r.Get("txid")->str == txid) commit = &r;
  }
  ASSERT_NE(commit, nullptr);
  EXPECT_EQ(commit->Get("branches")->size(), 2u);

  // Flip one byte inside that COMMIT record's payload, in a copy: a valid
  // record (its END) follows, so this is corruption, not a torn tail.
  absl::StatusOr<TempDir> copy = TempDir::Create("walcopy");
  ASSERT_TRUE(copy.ok()) << copy.status();
  std::filesystem::copy(data_dir + "/wal", copy->path());
  const std::string segment = copy->Path(commit->Get("file")->str);
  {
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(file.good());
    file.seekp(static_cast<std::streamoff>(commit->Get("offset")->number) + 9 + 2);
    file.put('\xA5');
  }
  TxctlResult corrupt = Txctl({"wal", "check", copy->path()});
  EXPECT_EQ(corrupt.exit_code, 6) << corrupt;
  EXPECT_THAT(corrupt.err, HasSubstr("corrupt record in"));
  EXPECT_THAT(corrupt.err, HasSubstr(commit->Get("file")->str));
  TxctlResult corrupt_json = Txctl({"wal", "dump", copy->path(), "--json"});
  EXPECT_EQ(corrupt_json.exit_code, 6);
  EXPECT_FALSE(Json(corrupt_json).Get("ok")->boolean);
  EXPECT_EQ(Txctl({"wal", "check", copy->Path("missing")}).exit_code, 2);
  ASSERT_TRUE(cluster_->StartCoordinator().ok());
}

}  // namespace
}  // namespace txcoord::testing
