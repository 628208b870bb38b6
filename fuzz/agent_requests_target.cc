// Fuzzing the agent's request handling: txcoord.v1 Participant and Agent
// requests parsed from the input and passed to the agent's real service
// classes (which validate sizes, txids and limits) in front of a real
// participant on SQLite, kept in memory by the simulator's VFS. SQL comes
// from the input or from a few templates over a schema with a UNIQUE column
// and a foreign key, so that lock keys of every kind are taken. Properties:
// a status for every call; once every branch is aborted no lock is left and
// the database passes integrity_check.
#include <grpcpp/server_context.h>
#include <sqlite3.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/agent_service.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/fuzz_targets.h"
#include "participant/participant.h"
#include "sim/sim_vfs.h"

namespace txcoord::fuzz {
namespace {

class ScriptedEnlister final : public participant::Enlister {
 public:
  explicit ScriptedEnlister(Input* in) : in_(in) {}
  absl::Status Enlist(const std::string&, uint64_t, bool) override {
    switch (in_->Byte() % 4) {
      case 1:
        return absl::UnavailableError("fuzz: coordinator unreachable");
      case 2:
        return absl::FailedPreconditionError("fuzz: transaction is not ACTIVE");
      default:
        return absl::OkStatus();
    }
  }

 private:
  Input* in_;
};

constexpr const char* kTemplates[] = {
    "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2",
    "INSERT INTO accounts(id, balance, tag) VALUES (?1, ?2, ?3)",
    "DELETE FROM accounts WHERE id = ?1",
    "UPDATE accounts SET tag = ?1 WHERE id = ?2",
    "UPDATE accounts SET id = ?1 WHERE id = ?2",
    "INSERT INTO moves(id, account) VALUES (?1, ?2)",
    "DELETE FROM moves WHERE account = ?1",
    "SELECT id, balance, tag FROM accounts WHERE id >= ?1",
};
constexpr const char* kTxids[] = {"c.1.1", "c.1.2", "c.1.3", "other.7.1"};

// Raw SQL that would run long is kept out: a recursive CTE loops until the
// participant's statement time limit (10 s by default) interrupts it, which
// would stall the fuzzer (see docs/testing.md, "Findings").
bool Runnable(const std::string& sql) {
  return !absl::StrContains(absl::AsciiStrToLower(sql), "recursive");
}

void Fix(Input& in, v1::ExecuteRequest* r, std::set<std::string>* txids) {
  if (in.Byte() % 2) r->set_txid(kTxids[in.Byte() % 4]);
  for (v1::Statement& s : *r->mutable_statements()) {
    if (in.Byte() % 4 != 0 || !Runnable(s.sql())) {
      s.set_sql(kTemplates[in.Byte() % (sizeof(kTemplates) / sizeof(kTemplates[0]))]);
    }
    for (v1::Value& v : *s.mutable_params()) {
      if (v.has_int_value()) v.set_int_value(v.int_value() % 16);
    }
  }
  if (!r->txid().empty()) txids->insert(r->txid());
}

template <typename Request>
Request Parse(Input& in, std::set<std::string>* txids) {
  Request r;
  r.ParseFromString(in.Take(in.Byte()));
  if (in.Byte() % 2) r.set_txid(kTxids[in.Byte() % 4]);
  txids->insert(r.txid());
  return r;
}

}  // namespace

int FuzzAgentRequests(const uint8_t* data, size_t size) {
  sim::SimVfs& vfs = sim::SimVfs::Install();
  // SQL may ask for huge strings or blobs: SQLite's memory is capped, so
  // such requests fail with an error instead of exhausting the process.
  static const bool capped = (sqlite3_hard_heap_limit64(256 << 20), true);
  (void)capped;
  // One directory for every input: a new one would be an allocation that
  // outlives the input, and libFuzzer would stop to hunt for a leak.
  const std::string dir = "/fuzz/agent";
  Input in(data, size);
  ScriptedEnlister enlister(&in);
  participant::ParticipantOptions options;
  options.db_path = dir + "/db";
  options.name = "fuzz";
  options.default_lock_timeout = absl::ZeroDuration();
  options.max_lock_timeout = absl::ZeroDuration();
  options.branch_idle_timeout = absl::ZeroDuration();
  auto p = participant::Participant::Open(options, &enlister);
  Require(p.ok(), absl::StrCat("open: ", p.status().ToString()));
  auto setup = (*p)->Execute(
      "",
      {{"CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, tag TEXT UNIQUE)",
        {}},
       {"CREATE TABLE moves(id INTEGER PRIMARY KEY, account INTEGER REFERENCES accounts(id))", {}},
       {"INSERT INTO accounts(id, balance, tag) VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 30, NULL)",
        {}}},
      false, absl::ZeroDuration());
  Require(setup.ok(), absl::StrCat("schema: ", setup.status().ToString()));

  participant::AgentService agent(p->get());
  participant::ParticipantService service(p->get());
  // gRPC never passes a handler a null context, and the handlers take it by
  // reference; no access policy is set, so nothing in it is read.
  grpc::ServerContext context;
  std::set<std::string> txids;
  for (int op = 0; op < 24 && !in.empty(); ++op) {
    switch (in.Byte() % 6) {
      case 0: {
        v1::ExecuteRequest request;
        request.ParseFromString(in.Take(in.Byte() * 4));
        Fix(in, &request, &txids);
        v1::ExecuteResponse response;
        agent.Execute(&context, &request, &response);
        break;
      }
      case 1: {
        auto request = Parse<v1::PrepareRequest>(in, &txids);
        v1::PrepareResponse response;
        service.Prepare(&context, &request, &response);
        break;
      }
      case 2: {
        auto request = Parse<v1::BranchRequest>(in, &txids);
        v1::BranchResponse response;
        service.Commit(&context, &request, &response);
        break;
      }
      case 3: {
        auto request = Parse<v1::BranchRequest>(in, &txids);
        v1::BranchResponse response;
        service.Abort(&context, &request, &response);
        break;
      }
      case 4: {
        auto request = Parse<v1::BranchRequest>(in, &txids);
        v1::CommitOnePhaseResponse response;
        service.CommitOnePhase(&context, &request, &response);
        break;
      }
      case 5: {
        v1::BatchRequest request;
        request.ParseFromString(in.Take(in.Byte() * 2));
        for (v1::BatchRequest::Entry& entry : *request.mutable_entries()) {
          if (in.Byte() % 2) entry.set_txid(kTxids[in.Byte() % 4]);
          txids.insert(entry.txid());
        }
        v1::BatchResponse response;
        service.Batch(&context, &request, &response);
        break;
      }
    }
  }
  for (const std::string& txid : txids) {
    if (txid.empty()) continue;
    v1::BranchRequest request;
    request.set_txid(txid);
    v1::BranchResponse response;
    service.Abort(&context, &request, &response);
  }
  Require((*p)->LockCount() == 0, absl::StrCat((*p)->LockCount(), " locks left after every abort"));
  Require((*p)->BranchCount() == 0, "branches left after every abort");
  auto check = (*p)->Execute("", {{"PRAGMA integrity_check", {}}}, false, absl::ZeroDuration());
  if (check.ok() && !check->results.empty() && !check->results[0].rows.empty()) {
    const auto* text = std::get_if<std::string>(&check->results[0].rows[0][0]);
    Require(text != nullptr && *text == "ok", "database fails integrity_check");
  }
  p->reset();
  vfs.RemoveAll(dir);
  return 0;
}

}  // namespace txcoord::fuzz
