// A real deployment (txcoord and two txagents) per test, driven the way an
// operator drives it: by running the real `txctl` binary. Each agent's
// database has kv(k INTEGER PRIMARY KEY, v INTEGER) with the row (1, 0);
// a test transaction sets v at both agents. On failure the cluster's
// directory (databases, WAL, daemon logs) is kept and named.
#ifndef TXCOORD_TESTS_OPERATORS_OPERATORS_FIXTURE_H_
#define TXCOORD_TESTS_OPERATORS_OPERATORS_FIXTURE_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "harness/cluster.h"
#include "tests/operators/json_lite.h"
#include "tests/operators/txctl_runner.h"

namespace txcoord::testing {

class OperatorsTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // txctl against this cluster's coordinator, or (TxctlAt) agent `i`. The
  // output is echoed to the test log, so a run doubles as a transcript.
  TxctlResult Txctl(std::vector<std::string> args);
  TxctlResult TxctlAt(int agent, std::vector<std::string> args);
  // Parses --json output; a parse failure fails the test.
  JsonValue Json(const TxctlResult& result);

  // Begins a transaction and sets kv.v = value at both agents (not
  // committed). Returns the txid, or "" after a test failure.
  std::string BeginAndWrite(int64_t value);
  // Commits `txid` on a thread of its own: for commits that block because
  // the coordinator is stalled. Join the thread before the test ends.
  std::thread CommitInBackground(const std::string& txid);
  // kv.v at agent i, read straight from its database file.
  int64_t ValueAt(int agent);

  // Polls `done` every 100 ms until it holds or `timeout` passes.
  static bool Eventually(const std::function<bool()>& done,
                         absl::Duration timeout = absl::Seconds(30));
  // Waits until `path` contains `needle` (a daemon's log line).
  static bool LogContains(const std::string& path, const std::string& needle,
                          absl::Duration timeout = absl::Seconds(30));
  // The lines of `path` that contain `needle`, echoed to the test log.
  static std::vector<std::string> LogLines(const std::string& path, const std::string& needle);

  // The branch of `participant` in a transaction's JSON; nullptr if none.
  static const JsonValue* BranchOf(const JsonValue& tx, const std::string& participant);

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Client> client_;
  std::vector<std::unique_ptr<AgentClient>> agents_;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_OPERATORS_OPERATORS_FIXTURE_H_
