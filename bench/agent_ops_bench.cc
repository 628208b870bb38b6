// agent_ops_bench: what one branch costs an agent in-process, without gRPC:
// Execute (one UPDATE of one row), Prepare and Commit of a branch, the three
// in a row, an Execute with prepare=true (early prepare) alone and with its
// Commit, a one-phase commit, and a local update, on a SQLite file in --dir.
// CPU time is the calling thread's (the WAL sync is done by the caller, so
// its kernel time counts); real time adds the wait for the disk. Run once on
// the data disk and once on tmpfs (--dir=/dev/shm) to see the SQLite and
// txcoord CPU apart from fdatasync.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "common/sqlite_db.h"
#include "participant/participant.h"

namespace txcoord::participant {
namespace {

std::string g_dir = "/tmp";

class NullEnlister final : public Enlister {
 public:
  absl::Status Enlist(const std::string&, uint64_t, bool) override { return absl::OkStatus(); }
};

constexpr int kRows = 64;

// One participant on a fresh database with kRows accounts.
class Agent {
 public:
  Agent() {
    std::string pattern = g_dir + "/agent_ops_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    dir_ = pattern;
    ParticipantOptions options;
    options.db_path = dir_ + "/service.db";
    options.name = "svc";
    options.branch_idle_timeout = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<Participant>> opened = Participant::Open(options, &enlister_);
    if (!opened.ok()) std::abort();
    participant_ = *std::move(opened);
    Check(participant_
              ->Execute(
                  "",
                  {{"CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)", {}}},
                  false, absl::ZeroDuration())
              .status());
    for (int i = 0; i < kRows; ++i) {
      Check(participant_
                ->Execute("", {{"INSERT INTO accounts VALUES (?, 1000)", {int64_t{i}}}}, false,
                          absl::ZeroDuration())
                .status());
    }
  }
  ~Agent() {
    participant_.reset();
    std::filesystem::remove_all(dir_);
  }

  static void Check(const absl::Status& status) {
    if (!status.ok()) {
      std::fprintf(stderr, "agent_ops_bench: %s\n", status.ToString().c_str());
      std::abort();
    }
  }

  std::string NextTxid() { return absl::StrCat("bench.1.", ++sequence_); }
  std::vector<SqlStatement> Update() {
    return {
        {"UPDATE accounts SET balance = balance + 1 WHERE id = ?", {int64_t{sequence_ % kRows}}}};
  }
  Participant& p() { return *participant_; }

 private:
  std::string dir_;
  NullEnlister enlister_;
  std::unique_ptr<Participant> participant_;
  int64_t sequence_ = 0;
};

// One Execute of a branch timed; the branch then ended untimed (aborted,
// or committed once prepared).
void TimeExecute(benchmark::State& state, bool prepare) {
  Agent agent;
  for (auto _ : state) {
    const std::string txid = agent.NextTxid();
    Agent::Check(agent.p().Execute(txid, agent.Update(), prepare, absl::ZeroDuration()).status());
    state.PauseTiming();
    Agent::Check(prepare ? agent.p().Commit(txid) : agent.p().Abort(txid));
    state.ResumeTiming();
  }
}

void BM_BranchExecute(benchmark::State& state) { TimeExecute(state, /*prepare=*/false); }
BENCHMARK(BM_BranchExecute)->Unit(benchmark::kMicrosecond);

void BM_Prepare(benchmark::State& state) {
  Agent agent;
  for (auto _ : state) {
    const std::string txid = agent.NextTxid();
    state.PauseTiming();
    Agent::Check(agent.p().Execute(txid, agent.Update(), false, absl::ZeroDuration()).status());
    state.ResumeTiming();
    Agent::Check(agent.p().Prepare(txid, 0).status());
    state.PauseTiming();
    Agent::Check(agent.p().Commit(txid));
    state.ResumeTiming();
  }
}
BENCHMARK(BM_Prepare)->Unit(benchmark::kMicrosecond);

void BM_CommitPrepared(benchmark::State& state) {
  Agent agent;
  for (auto _ : state) {
    const std::string txid = agent.NextTxid();
    state.PauseTiming();
    Agent::Check(agent.p().Execute(txid, agent.Update(), false, absl::ZeroDuration()).status());
    Agent::Check(agent.p().Prepare(txid, 0).status());
    state.ResumeTiming();
    Agent::Check(agent.p().Commit(txid));
  }
}
BENCHMARK(BM_CommitPrepared)->Unit(benchmark::kMicrosecond);

void BM_WholeBranch(benchmark::State& state) {
  Agent agent;
  for (auto _ : state) {
    const std::string txid = agent.NextTxid();
    Agent::Check(agent.p().Execute(txid, agent.Update(), false, absl::ZeroDuration()).status());
    Agent::Check(agent.p().Prepare(txid, 0).status());
    Agent::Check(agent.p().Commit(txid));
  }
}
BENCHMARK(BM_WholeBranch)->Unit(benchmark::kMicrosecond);

// Early prepare: the Execute prepares the branch and sends its vote (here
// to an enlister that answers at once).
void BM_EarlyPrepareExecute(benchmark::State& state) { TimeExecute(state, /*prepare=*/true); }
BENCHMARK(BM_EarlyPrepareExecute)->Unit(benchmark::kMicrosecond);

void BM_EarlyPreparedBranch(benchmark::State& state) {
  Agent agent;
  for (auto _ : state) {
    const std::string txid = agent.NextTxid();
    Agent::Check(agent.p().Execute(txid, agent.Update(), true, absl::ZeroDuration()).status());
    Agent::Check(agent.p().Commit(txid));
  }
}
BENCHMARK(BM_EarlyPreparedBranch)->Unit(benchmark::kMicrosecond);

void BM_OnePhase(benchmark::State& state) {
  Agent agent;
  for (auto _ : state) {
    const std::string txid = agent.NextTxid();
    Agent::Check(agent.p().Execute(txid, agent.Update(), false, absl::ZeroDuration()).status());
    Agent::Check(agent.p().CommitOnePhase(txid, 0).status());
  }
}
BENCHMARK(BM_OnePhase)->Unit(benchmark::kMicrosecond);

void BM_LocalUpdate(benchmark::State& state) {
  Agent agent;
  for (auto _ : state) {
    agent.NextTxid();
    Agent::Check(agent.p().Execute("", agent.Update(), false, absl::ZeroDuration()).status());
  }
}
BENCHMARK(BM_LocalUpdate)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace txcoord::participant

int main(int argc, char** argv) {
  // As txagent does.
  if (!txcoord::TurnOffSqliteMemoryStatistics().ok()) return 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--dir=", 0) == 0) {
      txcoord::participant::g_dir = arg.substr(6);
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      --i;
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
