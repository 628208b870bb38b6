#include "tests/operators/operators_fixture.h"

#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "harness/sqlite_inspect.h"

namespace txcoord::testing {

void OperatorsTest::SetUp() {
  ClusterOptions options;
  options.agents = 2;
  // Quick phase-2 retries, so that a test sees several attempts soon.
  options.coordinator_flags = {"--phase2_retry_max=300ms"};
  absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  cluster_ = *std::move(cluster);
  ClientOptions client_options;
  client_options.commit_timeout = absl::Seconds(20);
  // A Commit whose coordinator is killed under it (CommitInBackground) is
  // settled by the test through txctl: its client need not keep asking for
  // the default minute.
  client_options.settle_timeout = absl::Seconds(3);
  client_ = std::make_unique<Client>(cluster_->coordinator_address(), client_options);
  for (int i = 0; i < cluster_->agent_count(); ++i) {
    agents_.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i)));
    absl::StatusOr<ExecuteResult> created = agents_.back()->Execute(
        "", {{"CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)", {}},
             {"INSERT INTO kv VALUES (1, 0)", {}}});
    ASSERT_TRUE(created.ok()) << created.status();
  }
}

void OperatorsTest::TearDown() {
  if (cluster_ == nullptr) return;
  agents_.clear();
  client_.reset();
  if (HasFailure()) {
    cluster_->KeepDir();
    std::cerr << "cluster data and daemon logs kept in " << cluster_->dir() << "\n";
  }
  // Some tests leave a daemon stalled on purpose: kill, do not stop.
  cluster_.reset();
}

TxctlResult OperatorsTest::Txctl(std::vector<std::string> args) {
  args.push_back(absl::StrCat("--coordinator=", cluster_->coordinator_address()));
  args.push_back("--timeout=5s");
  TxctlResult result = RunTxctl(args);
  std::cout << "$ txctl " << absl::StrJoin(args, " ") << "   # exit " << result.exit_code << "\n"
            << result.out << result.err;
  return result;
}

TxctlResult OperatorsTest::TxctlAt(int agent, std::vector<std::string> args) {
  args.push_back(absl::StrCat("--agent=", cluster_->agent_address(agent)));
  return Txctl(std::move(args));
}

JsonValue OperatorsTest::Json(const TxctlResult& result) {
  absl::StatusOr<JsonValue> parsed = ParseJson(result.out);
  EXPECT_TRUE(parsed.ok()) << parsed.status() << "\n" << result;
  return parsed.ok() ? *std::move(parsed) : JsonValue();
}

std::string OperatorsTest::BeginAndWrite(int64_t value) {
  absl::StatusOr<std::string> txid = client_->Begin(absl::Seconds(60));
  EXPECT_TRUE(txid.ok()) << txid.status();
  if (!txid.ok()) return "";
  for (auto& agent : agents_) {
    absl::StatusOr<ExecuteResult> written =
        agent->Execute(*txid, {{"UPDATE kv SET v = ?1 WHERE k = 1", {value}}});
    EXPECT_TRUE(written.ok()) << written.status();
    if (!written.ok()) return "";
  }
  return *txid;
}

std::thread OperatorsTest::CommitInBackground(const std::string& txid) {
  return std::thread([this, txid] {
    absl::StatusOr<txcoord::CommitResult> result = client_->Commit(txid);
    std::cout << "background commit of " << txid << ": "
              << (result.ok() ? (result->committed ? "COMMITTED" : "ABORTED")
                              : result.status().ToString())
              << "\n";
  });
}

int64_t OperatorsTest::ValueAt(int agent) {
  absl::StatusOr<int64_t> value =
      QueryInt64(cluster_->agent_db(agent), "SELECT v FROM kv WHERE k = 1");
  EXPECT_TRUE(value.ok()) << value.status();
  return value.ok() ? *value : -1;
}

bool OperatorsTest::Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return true;
}

bool OperatorsTest::LogContains(const std::string& path, const std::string& needle,
                                absl::Duration timeout) {
  return Eventually(
      [&] {
        std::ifstream file(path);
        std::stringstream text;
        text << file.rdbuf();
        return absl::StrContains(text.str(), needle);
      },
      timeout);
}

std::vector<std::string> OperatorsTest::LogLines(const std::string& path,
                                                 const std::string& needle) {
  std::vector<std::string> lines;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    if (!absl::StrContains(line, needle)) continue;
    std::cout << path.substr(path.rfind('/') + 1) << ": " << line << "\n";
    lines.push_back(line);
  }
  return lines;
}

const JsonValue* OperatorsTest::BranchOf(const JsonValue& tx, const std::string& participant) {
  const JsonValue* branches = tx.Get("branches");
  if (branches == nullptr) return nullptr;
  for (const JsonValue& b : branches->items) {
    const JsonValue* name = b.Get("participant");
    if (name != nullptr && name->str == participant) return &b;
  }
  return nullptr;
}

}  // namespace txcoord::testing
