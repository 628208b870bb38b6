// The HTTP/JSON ports of both daemons against a real cluster: the same
// transfers run over HTTP and over gRPC end alike and leave the same
// balances; every endpoint of both daemons answers; statuses map to their
// HTTP codes.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/txid.h"
#include "gtest/gtest.h"
#include "harness/sqlite_inspect.h"
#include "tests/integration/http_fixture.h"

namespace txcoord::testing {
namespace {

// The HTTP transfers use the accounts of the gRPC ones shifted by this.
constexpr int64_t kHttpIds = 100;

// One transfer: credit `to_id` at the other agent, then read `from_id` at
// `from` and debit it if the balance allows; else abort (balance check).
struct Step {
  int from;
  int64_t from_id;
  int64_t to_id;
  int64_t amount;
  bool early_prepare;  // each branch's last Execute prepares it
};

constexpr Step kSteps[] = {
    {0, 1, 2, 30, false}, {1, 2, 3, 50, true},  {0, 3, 1, 500, false},
    {1, 1, 1, 70, false}, {0, 2, 2, 100, true}, {0, 1, 3, 141, true},
};
const std::vector<std::string> kExpectedOutcomes = {
    "COMMITTED", "COMMITTED", "ABORTED (balance check)",
    "COMMITTED", "COMMITTED", "ABORTED (balance check)"};

constexpr char kCredit[] = "UPDATE accounts SET balance = balance + ?2 WHERE id = ?1";
constexpr char kDebit[] = "UPDATE accounts SET balance = balance - ?2 WHERE id = ?1";
constexpr char kBalance[] = "SELECT balance FROM accounts WHERE id = ?1";

nlohmann::json Statement(const std::string& sql, nlohmann::json params = nlohmann::json::array()) {
  return nlohmann::json{{"sql", sql}, {"params", std::move(params)}};
}

nlohmann::json ExecuteBody(const std::string& txid, nlohmann::json statement,
                           bool prepare = false) {
  nlohmann::json body = {{"txid", txid}, {"prepare", prepare}};
  body["statements"] = nlohmann::json::array({std::move(statement)});
  return body;
}

class HttpTest : public HttpClusterFixture {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = HttpClusterFixture::Options();
    options.agents = 2;
    return options;
  }

  void SetUp() override {
    HttpClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    for (int i = 0; i < 2; ++i) {
      nlohmann::json body = {{"statements", nlohmann::json::array()}};
      body["statements"].push_back(
          Statement("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL "
                    "CHECK (balance >= 0))"));
      for (int64_t id :
           {int64_t{1}, int64_t{2}, int64_t{3}, 1 + kHttpIds, 2 + kHttpIds, 3 + kHttpIds}) {
        body["statements"].push_back(Statement("INSERT INTO accounts VALUES (?1, ?2)", {id, 100}));
      }
      HttpReply created = HttpPost(agent_http(i), "/v1/execute", body);
      ASSERT_EQ(created.status, 200) << created;
      ASSERT_EQ(created.body["results"].size(), 7u) << created;
      EXPECT_EQ(created.body["results"][1]["changes"], 1) << created;
      EXPECT_EQ(created.body["vote"], nullptr) << created;
    }
  }

  // Begins a transaction over HTTP: its txid, or "" (and a test failure).
  std::string BeginOverHttp(int timeout_ms = 30000) {
    HttpReply begin =
        HttpPost(coordinator_http(), "/v1/transactions", {{"timeout_ms", timeout_ms}});
    EXPECT_EQ(begin.status, 200) << begin;
    return begin.body.is_object() ? begin.body.value("txid", "") : "";
  }

  std::string TransferOverGrpc(const Step& step, std::string* txid_out) {
    absl::StatusOr<std::string> txid = coordinator_->Begin(absl::Seconds(20));
    if (!txid.ok()) return txid.status().ToString();
    *txid_out = *txid;
    ExecuteOptions last;
    last.prepare = step.early_prepare;
    absl::StatusOr<SqlResult> credit =
        agents_[1 - step.from]->ExecuteOne(*txid, kCredit, {step.to_id, step.amount}, last);
    if (!credit.ok()) return credit.status().ToString();
    absl::StatusOr<SqlResult> balance =
        agents_[step.from]->ExecuteOne(*txid, kBalance, {step.from_id});
    if (!balance.ok()) return balance.status().ToString();
    if (std::get<int64_t>(balance->rows.at(0).at(0)) < step.amount) {
      absl::Status aborted = coordinator_->Abort(*txid);
      return aborted.ok() ? "ABORTED (balance check)" : aborted.ToString();
    }
    absl::StatusOr<SqlResult> debit =
        agents_[step.from]->ExecuteOne(*txid, kDebit, {step.from_id, step.amount}, last);
    if (!debit.ok()) return debit.status().ToString();
    absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
    if (!commit.ok()) return commit.status().ToString();
    return commit->committed ? "COMMITTED" : "ABORTED: " + commit->reason;
  }

  // An Execute of one statement over HTTP; its first result, or null with
  // the failure in *error.
  nlohmann::json ExecuteOverHttp(int agent, const std::string& txid, nlohmann::json statement,
                                 bool prepare, std::string* error) {
    HttpReply reply = HttpPost(agent_http(agent), "/v1/execute",
                               ExecuteBody(txid, std::move(statement), prepare));
    if (reply.status != 200) {
      *error = absl::StrCat("execute: ", reply.status, " ", reply.raw);
      return nullptr;
    }
    if (prepare && reply.body["vote"] != "YES") {
      *error = absl::StrCat("early prepare did not vote YES: ", reply.raw);
      return nullptr;
    }
    return reply.body["results"][0];
  }

  // A transaction whose branch at `agent` credited `id` and voted YES
  // early: its txid, or "" (and a test failure).
  std::string BeginWithPreparedCredit(int agent, int64_t id, int64_t amount) {
    const std::string txid = BeginOverHttp(60000);
    std::string error;
    if (txid.empty() ||
        ExecuteOverHttp(agent, txid, Statement(kCredit, {id, amount}), true, &error).is_null()) {
      ADD_FAILURE() << "early prepare at agent " << agent << ": " << error;
      return "";
    }
    return txid;
  }

  std::string TransferOverHttp(const Step& step, std::string* txid_out) {
    const Step s = {step.from, step.from_id + kHttpIds, step.to_id + kHttpIds, step.amount,
                    step.early_prepare};
    const std::string txid = BeginOverHttp(20000);
    if (txid.empty()) return "begin failed";
    *txid_out = txid;
    std::string error;
    if (ExecuteOverHttp(1 - s.from, txid, Statement(kCredit, {s.to_id, s.amount}), s.early_prepare,
                        &error)
            .is_null()) {
      return error;
    }
    nlohmann::json balance =
        ExecuteOverHttp(s.from, txid, Statement(kBalance, {s.from_id}), false, &error);
    if (balance.is_null()) return error;
    if (balance["rows"][0][0].get<int64_t>() < s.amount) {
      HttpReply aborted = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/abort");
      return aborted.status == 200 && aborted.body["aborted"] == true
                 ? "ABORTED (balance check)"
                 : absl::StrCat("abort: ", aborted.raw);
    }
    if (ExecuteOverHttp(s.from, txid, Statement(kDebit, {s.from_id, s.amount}), s.early_prepare,
                        &error)
            .is_null()) {
      return error;
    }
    HttpReply commit = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/commit");
    if (commit.status != 200) return absl::StrCat("commit: ", commit.raw);
    return commit.body["outcome"] == "COMMITTED"
               ? "COMMITTED"
               : absl::StrCat("ABORTED: ", commit.body["reason"].get<std::string>());
  }

  // The transaction's state once it is finished (COMMITTED: every branch
  // acknowledged), read over HTTP; the last state seen after 20 s.
  std::string FinalState(const std::string& txid) {
    std::string state;
    for (absl::Time deadline = absl::Now() + absl::Seconds(20); absl::Now() < deadline;
         absl::SleepFor(absl::Milliseconds(20))) {
      HttpReply tx = HttpGet(coordinator_http(), "/v1/transactions/" + txid);
      if (tx.status != 200) return tx.raw;
      state = tx.body["state"];
      if (state == "COMMITTED" || state == "ABORTED") break;
    }
    return state;
  }

  HttpReply AdminTransaction(const std::string& txid) {
    return HttpGet(coordinator_http(), "/v1/admin/transactions/" + txid);
  }
};

TEST_F(HttpTest, TransfersOverHttpEndAsOverGrpcAndLeaveTheSameBalances) {
  std::vector<std::string> grpc_outcomes;
  std::vector<std::string> http_outcomes;
  std::vector<std::string> grpc_txids;
  std::vector<std::string> http_txids;
  for (const Step& step : kSteps) {
    std::string txid;
    grpc_outcomes.push_back(TransferOverGrpc(step, &txid));
    grpc_txids.push_back(txid);
    http_outcomes.push_back(TransferOverHttp(step, &txid));
    http_txids.push_back(txid);
  }
  EXPECT_EQ(grpc_outcomes, kExpectedOutcomes);
  EXPECT_EQ(http_outcomes, kExpectedOutcomes);

  for (size_t i = 0; i < grpc_txids.size(); ++i) {
    const std::string http_state = FinalState(http_txids[i]);
    absl::StatusOr<v1::Transaction> grpc_tx = coordinator_->GetTransaction(grpc_txids[i]);
    ASSERT_TRUE(grpc_tx.ok()) << grpc_tx.status();
    std::string grpc_state = FinalState(grpc_txids[i]);
    EXPECT_EQ(http_state, grpc_state) << "transfer " << i;
    EXPECT_EQ(http_state, kExpectedOutcomes[i] == "COMMITTED" ? "COMMITTED" : "ABORTED");
  }

  for (int agent = 0; agent < 2; ++agent) {
    absl::StatusOr<std::set<std::string>> over_grpc = QueryStrings(
        cluster_->agent_db(agent), "SELECT id || ':' || balance FROM accounts WHERE id < 100");
    absl::StatusOr<std::set<std::string>> over_http =
        QueryStrings(cluster_->agent_db(agent),
                     "SELECT (id - 100) || ':' || balance FROM accounts WHERE id > 100");
    ASSERT_TRUE(over_grpc.ok()) << over_grpc.status();
    ASSERT_TRUE(over_http.ok()) << over_http.status();
    EXPECT_EQ(*over_http, *over_grpc) << "agent " << agent;
  }
  // Money is conserved, and the aborted transfers moved none of it.
  absl::StatusOr<int64_t> total =
      SumQueryInt64(cluster_->agent_dbs(), "SELECT SUM(balance) FROM accounts");
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, 2 * 6 * 100);
  absl::StatusOr<std::set<std::string>> agent0 = QueryStrings(
      cluster_->agent_db(0), "SELECT id || ':' || balance FROM accounts WHERE id > 100");
  ASSERT_TRUE(agent0.ok());
  // 101: -30 +70 (its 141 debit refused); 102: -100; 103: +50 (its 500
  // debit refused).
  EXPECT_EQ(*agent0, (std::set<std::string>{"101:140", "102:0", "103:150"}));
}

TEST_F(HttpTest, ReleaseRollsBackAnUnpreparedBranch) {
  const std::string txid = BeginOverHttp();
  ASSERT_FALSE(txid.empty());
  HttpReply write =
      HttpPost(agent_http(0), "/v1/execute", ExecuteBody(txid, Statement(kCredit, {1, 5})));
  ASSERT_EQ(write.status, 200) << write;
  HttpReply released = HttpPost(agent_http(0), "/v1/release", {{"txid", txid}});
  ASSERT_EQ(released.status, 200) << released;
  EXPECT_EQ(released.body["released"], true) << released;
  EXPECT_TRUE(released.body["detail"].is_string()) << released;
  HttpReply again = HttpPost(agent_http(0), "/v1/release", {{"txid", txid}});
  ASSERT_EQ(again.status, 200) << again;
  EXPECT_EQ(again.body["released"], false) << again;
  HttpReply commit = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/commit");
  ASSERT_EQ(commit.status, 200) << commit;
  EXPECT_EQ(commit.body["outcome"], "ABORTED") << commit;
}

// Naming the branches in Commit (docs/protocol.md) over HTTP: Begin says
// the coordinator checks names, each Execute reports its branch, and a
// Commit naming them commits; a malformed name is a 400.
TEST_F(HttpTest, ACommitNamesTheBranchesItsExecutesReported) {
  HttpReply begun = HttpPost(coordinator_http(), "/v1/transactions", {{"timeout_ms", 30000}});
  ASSERT_EQ(begun.status, 200) << begun;
  EXPECT_EQ(begun.body["checks_named_branches"], true) << begun;
  const std::string txid = begun.body["txid"].get<std::string>();
  nlohmann::json branches = nlohmann::json::array();
  for (int agent : {0, 1}) {
    nlohmann::json body = ExecuteBody(txid, Statement(kCredit, {2, 3}));
    body["named_in_commit"] = true;
    HttpReply wrote = HttpPost(agent_http(agent), "/v1/execute", body);
    ASSERT_EQ(wrote.status, 200) << wrote;
    ASSERT_TRUE(wrote.body["participant"].is_string()) << wrote;
    ASSERT_TRUE(wrote.body["branch_token"].is_string()) << wrote;
    branches.push_back(
        {{"participant", wrote.body["participant"]}, {"branch_token", wrote.body["branch_token"]}});
  }
  HttpReply bad = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/commit",
                           {{"branches", {{{"participant", "x"}, {"branch_token", "twelve"}}}}});
  EXPECT_EQ(bad.status, 400) << bad;
  HttpReply commit = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/commit",
                              {{"branches", branches}});
  ASSERT_EQ(commit.status, 200) << commit;
  EXPECT_EQ(commit.body["outcome"], "COMMITTED") << commit;
}

// Signed votes over HTTP (docs/protocol.md, "Signed votes"): an early
// prepare that says the client carries proofs reports its signed vote
// (base64) and endpoint once the agent holds a key, and a Commit naming
// the branch with both commits; an altered proof is a 400, and an Abort
// naming the signed branches frees their rows at once.
TEST_F(HttpTest, SignedVotesTravelFromExecuteToCommit) {
  auto begin = [this] {
    HttpReply begun = HttpPost(coordinator_http(), "/v1/transactions", {{"timeout_ms", 30000}});
    EXPECT_EQ(begun.status, 200) << begun;
    return begun.body["txid"].get<std::string>();
  };
  // Unnamed, so each agent's vote goes by a synchronous Enlist, whose
  // answer brings the agent its key.
  const std::string first = begin();
  for (int agent : {0, 1}) {
    nlohmann::json body = ExecuteBody(first, Statement(kCredit, {1, 1}));
    body["prepare"] = true;
    HttpReply wrote = HttpPost(agent_http(agent), "/v1/execute", body);
    ASSERT_EQ(wrote.status, 200) << wrote;
    EXPECT_TRUE(wrote.body["vote_proof"].is_null()) << wrote;
  }
  HttpReply committed = HttpPost(coordinator_http(), "/v1/transactions/" + first + "/commit");
  ASSERT_EQ(committed.status, 200) << committed;
  EXPECT_EQ(committed.body["outcome"], "COMMITTED") << committed;

  for (bool alter : {true, false}) {
    SCOPED_TRACE(alter);
    const std::string txid = begin();
    nlohmann::json branches = nlohmann::json::array();
    for (int agent : {0, 1}) {
      nlohmann::json body = ExecuteBody(txid, Statement(kCredit, {2, 3}));
      body["prepare"] = true;
      body["named_in_commit"] = true;
      body["carries_vote_proof"] = true;
      // Rows 2 and 3 again: held by the aborted transaction's prepared
      // branches until its Abort reaches them, long before their agents
      // would ask for the outcome (2 s).
      body["lock_timeout_ms"] = 1000;
      HttpReply wrote = HttpPost(agent_http(agent), "/v1/execute", body);
      ASSERT_EQ(wrote.status, 200) << wrote;
      ASSERT_TRUE(wrote.body["vote_proof"].is_string()) << wrote;
      ASSERT_TRUE(wrote.body["endpoint"].is_string()) << wrote;
      branches.push_back({{"participant", wrote.body["participant"]},
                          {"branch_token", wrote.body["branch_token"]},
                          {"endpoint", wrote.body["endpoint"]},
                          {"vote_proof", wrote.body["vote_proof"]}});
    }
    HttpReply not_base64 = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/commit",
                                    {{"branches",
                                      {{{"participant", "x"},
                                        {"branch_token", "12"},
                                        {"endpoint", "h:1"},
                                        {"vote_proof", "%%%"}}}}});
    EXPECT_EQ(not_base64.status, 400) << not_base64;
    nlohmann::json sent = branches;
    if (alter) sent[1]["endpoint"] = "elsewhere.example:1";
    HttpReply commit =
        HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/commit", {{"branches", sent}});
    if (alter) {
      EXPECT_EQ(commit.status, 400) << commit;
      EXPECT_NE(commit.body.dump().find("vote proof"), std::string::npos) << commit;
      HttpReply aborted = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/abort",
                                   {{"branches", branches}});
      EXPECT_EQ(aborted.status, 200) << aborted;
    } else {
      ASSERT_EQ(commit.status, 200) << commit;
      EXPECT_EQ(commit.body["outcome"], "COMMITTED") << commit;
    }
  }
}

// Reserved txids over HTTP (docs/protocol.md, "Reserved txids"): nothing
// exists at the coordinator until a txid's first use; an Execute's Enlist
// begins one, and an Abort first uses another up for good.
TEST_F(HttpTest, ReservedTxidsBeginAtTheirFirstUse) {
  HttpReply reserved =
      HttpPost(coordinator_http(), "/v1/txid-reservations", {{"count", 2}, {"timeout_ms", 30000}});
  ASSERT_EQ(reserved.status, 200) << reserved;
  ASSERT_EQ(reserved.body["txids"].size(), 2u) << reserved;
  EXPECT_GT(reserved.body["valid_for_ms"].get<int64_t>(), 0) << reserved;
  const std::string used = reserved.body["txids"][0].get<std::string>();
  const std::string dropped = reserved.body["txids"][1].get<std::string>();

  HttpReply before = HttpGet(coordinator_http(), "/v1/transactions/" + used);
  EXPECT_EQ(before.status, 200) << before;
  EXPECT_EQ(before.body["state"], "ACTIVE") << before;
  EXPECT_NE(before.body.dump().find("reserved, not begun yet"), std::string::npos) << before;
  for (int agent : {0, 1}) {
    HttpReply wrote =
        HttpPost(agent_http(agent), "/v1/execute", ExecuteBody(used, Statement(kCredit, {2, 3})));
    ASSERT_EQ(wrote.status, 200) << wrote;
  }
  HttpReply begun = HttpGet(coordinator_http(), "/v1/transactions/" + used);
  ASSERT_EQ(begun.status, 200) << begun;
  EXPECT_EQ(begun.body["state"], "ACTIVE") << begun;
  EXPECT_EQ(begun.body["branches"].size(), 2u) << begun;
  HttpReply commit = HttpPost(coordinator_http(), "/v1/transactions/" + used + "/commit");
  ASSERT_EQ(commit.status, 200) << commit;
  EXPECT_EQ(commit.body["outcome"], "COMMITTED") << commit;
  // The epoch the txids carry (their middle number) is the answering
  // coordinator's: the reservation is alive.
  absl::StatusOr<Txid> parsed = ParseTxid(used);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const uint64_t epoch = parsed->epoch;
  EXPECT_EQ(commit.body["coordinator_epoch"], epoch) << commit;

  HttpReply abort = HttpPost(coordinator_http(), "/v1/transactions/" + dropped + "/abort");
  ASSERT_EQ(abort.status, 200) << abort;
  EXPECT_EQ(abort.body["coordinator_epoch"], epoch) << abort;
  HttpReply late =
      HttpPost(agent_http(0), "/v1/execute", ExecuteBody(dropped, Statement(kCredit, {2, 3})));
  // The agent's Enlist finds it unknown, never to begin: the branch rolls back.
  EXPECT_EQ(late.status, 409) << late;
  EXPECT_NE(late.body.dump().find("is unknown"), std::string::npos) << late;
  HttpReply none = HttpPost(coordinator_http(), "/v1/txid-reservations", {{"count", 0}});
  EXPECT_EQ(none.status, 400) << none;
}

// A message-only Execute inside a transaction stays the transaction's: its
// id names the txid (a local one's would start "local/").
TEST_F(HttpTest, AMessageOnlyExecuteJoinsTheTransaction) {
  const std::string txid = BeginOverHttp();
  ASSERT_FALSE(txid.empty());
  nlohmann::json body = {
      {"txid", txid}, {"messages", {{{"topic", "bank.events"}, {"key", "k"}, {"payload", "p"}}}}};
  HttpReply wrote = HttpPost(agent_http(0), "/v1/execute", body);
  ASSERT_EQ(wrote.status, 200) << wrote;
  ASSERT_EQ(wrote.body["message_ids"].size(), 1u) << wrote;
  EXPECT_TRUE(absl::StartsWith(wrote.body["message_ids"][0].get<std::string>(), txid + "/"))
      << wrote;
  HttpReply aborted = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/abort");
  EXPECT_EQ(aborted.status, 200) << aborted;
  HttpReply released = HttpPost(agent_http(0), "/v1/release", {{"txid", txid}});
  EXPECT_EQ(released.status, 200) << released;
}

TEST_F(HttpTest, CoordinatorAdminSettlesAStuckCommitOverHttp) {
  // agent1 votes YES early and goes away: the commit is decided but its
  // phase 2 cannot reach agent1.
  const std::string txid = BeginWithPreparedCredit(1, 1, 10);
  ASSERT_FALSE(txid.empty());
  std::string error;
  ASSERT_FALSE(ExecuteOverHttp(0, txid, Statement(kDebit, {1, 10}), false, &error).is_null())
      << error;
  ASSERT_TRUE(cluster_->StopAgent(1).ok());
  HttpReply commit = HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/commit");
  ASSERT_EQ(commit.status, 200) << commit;
  EXPECT_EQ(commit.body["outcome"], "COMMITTED") << commit;

  HttpReply list =
      HttpGet(coordinator_http(), "/v1/admin/transactions?state=COMMITTING&page_size=10");
  ASSERT_EQ(list.status, 200) << list;
  ASSERT_EQ(list.body["transactions"].size(), 1u) << list;
  EXPECT_EQ(list.body["transactions"][0]["txid"], txid) << list;
  EXPECT_EQ(list.body["next_page_token"], "") << list;

  HttpReply tx = AdminTransaction(txid);
  ASSERT_EQ(tx.status, 200) << tx;
  EXPECT_EQ(tx.body["state"], "COMMITTING") << tx;
  ASSERT_EQ(tx.body["branches"].size(), 2u) << tx;

  HttpReply retry = HttpPost(coordinator_http(), "/v1/admin/transactions/" + txid + "/retry");
  ASSERT_EQ(retry.status, 200) << retry;
  EXPECT_EQ(retry.body["transaction"]["txid"], txid) << retry;
  EXPECT_TRUE(retry.body["message"].is_string()) << retry;

  // Refused once COMMIT is logged.
  HttpReply abort = HttpPost(coordinator_http(), "/v1/admin/transactions/" + txid + "/abort",
                             {{"reason", "too late"}});
  EXPECT_EQ(abort.status, 409) << abort;
  EXPECT_EQ(abort.body["code"], "FAILED_PRECONDITION") << abort;

  HttpReply done =
      HttpPost(coordinator_http(), "/v1/admin/transactions/" + txid + "/branches/agent1/mark-done",
               {{"note", "applied by hand"}});
  ASSERT_EQ(done.status, 200) << done;
  EXPECT_EQ(FinalState(txid), "COMMITTED");
  HttpReply finished = AdminTransaction(txid);
  ASSERT_EQ(finished.status, 200) << finished;
  bool heuristic = false;
  for (const nlohmann::json& b : finished.body["branches"]) {
    if (b["participant"] == "agent1") heuristic = b["heuristic"];
  }
  EXPECT_TRUE(heuristic) << finished;
  HttpReply all = HttpGet(coordinator_http(), "/v1/admin/transactions?include_finished=true");
  ASSERT_EQ(all.status, 200) << all;

  // agent1 comes back and learns the outcome of its prepared branch.
  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    HttpReply in_doubt = HttpGet(agent_http(1), "/v1/admin/in-doubt");
    ASSERT_EQ(in_doubt.status, 200) << in_doubt;
    if (in_doubt.body["branches"].empty()) break;
    ASSERT_LT(absl::Now(), deadline) << in_doubt;
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::StatusOr<int64_t> total =
      SumQueryInt64(cluster_->agent_dbs(), "SELECT SUM(balance) FROM accounts");
  ASSERT_TRUE(total.ok()) << total.status();
  EXPECT_EQ(*total, 2 * 6 * 100);

  HttpReply metrics = HttpGet(coordinator_http(), "/v1/admin/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics;
  EXPECT_NE(metrics.body["text"].get<std::string>().find("txcoord_"), std::string::npos);
}

TEST_F(HttpTest, BothDaemonsServeTheirConsoleFromTheBinary) {
  for (const std::string& address : {coordinator_http(), agent_http(0)}) {
    HttpReply page = HttpGet(address, "/ui");
    EXPECT_EQ(page.status, 200) << address;
    EXPECT_NE(page.raw.find("<!doctype html>"), std::string::npos) << address;
  }
  EXPECT_NE(HttpGet(agent_http(0), "/ui").raw.find("In-doubt branches"), std::string::npos);
  EXPECT_EQ(HttpGet(agent_http(0), "/ui/agent.js").status, 200);
  EXPECT_EQ(HttpGet(coordinator_http(), "/ui/console.js").status, 200);
  EXPECT_EQ(HttpGet(agent_http(0), "/ui/nothing.js").status, 404);
}

TEST_F(HttpTest, AgentAdminResolvesAnInDoubtBranchOverHttp) {
  const std::string txid = BeginWithPreparedCredit(0, 2, 7);
  ASSERT_FALSE(txid.empty());

  HttpReply in_doubt = HttpGet(agent_http(0), "/v1/admin/in-doubt");
  ASSERT_EQ(in_doubt.status, 200) << in_doubt;
  ASSERT_EQ(in_doubt.body["branches"].size(), 1u) << in_doubt;
  EXPECT_EQ(in_doubt.body["branches"][0]["txid"], txid) << in_doubt;
  EXPECT_EQ(in_doubt.body["branches"][0]["coordinator"], "it") << in_doubt;
  EXPECT_EQ(in_doubt.body["branches"][0]["vote"], "SENT") << in_doubt;
  EXPECT_EQ(in_doubt.body["participant"], "agent0") << in_doubt;
  EXPECT_EQ(in_doubt.body["coordinator_address"], cluster_->coordinator_address()) << in_doubt;

  HttpReply resolved = HttpPost(agent_http(0), "/v1/admin/in-doubt/" + txid + "/resolve",
                                {{"decision", "ABORTED"}, {"reason", "operator test"}});
  ASSERT_EQ(resolved.status, 200) << resolved;
  EXPECT_EQ(resolved.body["txid"], txid) << resolved;
  EXPECT_EQ(resolved.body["decision"], "ABORTED") << resolved;
  EXPECT_EQ(resolved.body["reason"], "operator test") << resolved;
  EXPECT_EQ(resolved.body["heuristic_mixed"], false) << resolved;

  // The coordinator's own decision agrees: force-abort over HTTP.
  HttpReply abort = HttpPost(coordinator_http(), "/v1/admin/transactions/" + txid + "/abort",
                             {{"reason", "operator test"}});
  ASSERT_EQ(abort.status, 200) << abort;
  EXPECT_EQ(abort.body["transaction"]["state"], "ABORTED") << abort;

  HttpReply heuristics = HttpGet(agent_http(0), "/v1/admin/heuristics?mixed_only=false");
  ASSERT_EQ(heuristics.status, 200) << heuristics;
  ASSERT_EQ(heuristics.body["decisions"].size(), 1u) << heuristics;
  EXPECT_EQ(heuristics.body["decisions"][0]["txid"], txid) << heuristics;
  HttpReply mixed = HttpGet(agent_http(0), "/v1/admin/heuristics?mixed_only=true");
  ASSERT_EQ(mixed.status, 200) << mixed;
  EXPECT_TRUE(mixed.body["decisions"].empty()) << mixed;
  HttpReply after = HttpGet(agent_http(0), "/v1/admin/in-doubt");
  ASSERT_EQ(after.status, 200) << after;
  EXPECT_TRUE(after.body["branches"].empty()) << after;
  absl::StatusOr<int64_t> balance =
      QueryInt64(cluster_->agent_db(0), "SELECT balance FROM accounts WHERE id = 2");
  ASSERT_TRUE(balance.ok()) << balance.status();
  EXPECT_EQ(*balance, 100);

  HttpReply metrics = HttpGet(agent_http(0), "/v1/admin/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics;
  EXPECT_NE(metrics.body["text"].get<std::string>().find("txagent_"), std::string::npos);
}

TEST_F(HttpTest, StatusesMapToHttpCodes) {
  struct Case {
    std::string what;
    HttpReply reply;
    int status;
    std::string code;
  };
  const std::string txid = BeginOverHttp();
  ASSERT_FALSE(txid.empty());
  ASSERT_EQ(HttpPost(coordinator_http(), "/v1/transactions/" + txid + "/abort").status, 200);
  const std::string bad_json = "{\"statements\": [";
  const std::vector<Case> cases = {
      {"unknown route", HttpGet(agent_http(0), "/v1/nope"), 404, "NOT_FOUND"},
      {"unknown route", HttpGet(coordinator_http(), "/v2/transactions"), 404, "NOT_FOUND"},
      {"wrong method", HttpGet(agent_http(0), "/v1/execute"), 405, "UNIMPLEMENTED"},
      {"wrong method", HttpPost(coordinator_http(), "/v1/transactions/" + txid), 405,
       "UNIMPLEMENTED"},
      {"bad JSON", HttpRequestRaw(agent_http(0), "/v1/execute", &bad_json), 400,
       "INVALID_ARGUMENT"},
      {"unknown transaction", HttpGet(coordinator_http(), "/v1/transactions/it.1.999999"), 404,
       "NOT_FOUND"},
      {"write in an aborted transaction",
       HttpPost(agent_http(0), "/v1/execute", ExecuteBody(txid, Statement(kCredit, {1, 1}))), 409,
       "ABORTED"},
      {"resolve a branch that is not in doubt",
       HttpPost(agent_http(0), "/v1/admin/in-doubt/" + txid + "/resolve",
                {{"decision", "COMMITTED"}}),
       404, "NOT_FOUND"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.reply.status, c.status) << c.what << ": " << c.reply;
    EXPECT_EQ(c.reply.body["code"], c.code) << c.what << ": " << c.reply;
    EXPECT_TRUE(c.reply.body["message"].is_string()) << c.what << ": " << c.reply;
  }
}

}  // namespace
}  // namespace txcoord::testing
