#include "bench/txn_workload.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/floors.h"
#include "bench/proc_stats.h"
#include "client/transaction.h"
#include "harness/lock_barrier.h"

namespace txcoord::bench {
namespace {

constexpr char kCreateTable[] =
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)";
constexpr char kUpdate[] = "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2";
// Rows per INSERT: far below the 64 KiB statement limit.
constexpr int kRowsPerInsert = 1000;
// Longer than any point: a transaction must never die of its deadline.
constexpr absl::Duration kTxTimeout = absl::Minutes(5);
constexpr absl::Duration kDrainTimeout = absl::Seconds(60);
constexpr Clock::duration kBucket = std::chrono::milliseconds(100);
// At most 100 syncs/s of the floor's own: little next to the agents' load.
constexpr Clock::duration kFsyncSampleInterval = std::chrono::milliseconds(10);

std::string StatusText(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

// What one client thread saw inside the measured window.
struct ClientTally {
  std::vector<Clock::duration> commit, txn, begin, execute;
  std::vector<int64_t> per_bucket;  // commits per kBucket of the window
  int64_t committed = 0;
  int64_t failed = 0;
  std::string first_failure;
};

// A transfer's delta at branch `b` of transaction `i`: branch 0 pays every
// other branch 1. With a single branch the row alternates +1/-1 (a zero
// delta would change nothing and make the branch read-only).
int64_t Delta(const Point& point, int64_t i, int b) {
  return point.branches == 1 ? (i % 2 == 0 ? 1 : -1) : (b == 0 ? 1 - point.branches : 1);
}

// What is wrong with branch `b`'s answer to the transfer's UPDATE, or "";
// adds the branch to `named` (what a Commit naming its branches sends).
std::string BranchFailure(int b, const absl::StatusOr<ExecuteResult>& result,
                          std::vector<NamedBranch>* named) {
  if (!result.ok()) return absl::StrCat("Execute at agent #", b, ": ", StatusText(result.status()));
  const int64_t changes = result->results[0].changes;
  if (changes != 1) return absl::StrCat("Execute at agent #", b, " changed ", changes, " rows");
  NameBranch(*result, named);
  return "";
}

// The transfer's Executes one after another, each timed; what failed, or "".
std::string ExecuteInTurn(const Targets& targets, const Point& point, int64_t i, int64_t row,
                          const std::string& txid, const ExecuteOptions& options,
                          std::vector<Clock::duration>* executes, std::vector<NamedBranch>* named) {
  for (int b = 0; b < point.branches; ++b) {
    const Clock::time_point start = Clock::now();
    const absl::StatusOr<ExecuteResult> result =
        targets.agents[b]->Execute(txid, {{kUpdate, {Delta(point, i, b), row}}}, options);
    (*executes)[b] = Clock::now() - start;
    if (std::string failure = BranchFailure(b, result, named); !failure.empty()) return failure;
  }
  return "";
}

// The transfer's Executes sent at once; what failed, or "".
std::string ExecuteAtOnce(const Targets& targets, const Point& point, int64_t i, int64_t row,
                          const std::string& txid, const ExecuteOptions& options,
                          std::vector<Clock::duration>* executes, std::vector<NamedBranch>* named) {
  std::vector<Transaction::Branch> branches;
  for (int b = 0; b < point.branches; ++b) {
    branches.push_back({targets.agents[b], {{kUpdate, {Delta(point, i, b), row}}}, options});
  }
  Transaction tx(*targets.coordinator, txid, options.named_in_commit);
  const Clock::time_point start = Clock::now();
  std::vector<absl::StatusOr<ExecuteResult>> results = tx.ExecuteAll(branches);
  const Clock::duration took = Clock::now() - start;
  for (int b = 0; b < point.branches; ++b) {
    (*executes)[b] = took;
    if (std::string failure = BranchFailure(b, results[b], named); !failure.empty()) {
      return failure;
    }
  }
  return "";
}

// One client: transactions back to back until `stop`. A sample counts if
// its transaction ended inside [window_start, window_end).
void ClientLoop(const Targets& targets, const Point& point, int client,
                Clock::time_point window_start, Clock::time_point window_end, ClientTally* tally) {
  ExecuteOptions execute_options;
  execute_options.prepare = point.mode == Mode::kEarlyPrepare;
  const int64_t first_row = static_cast<int64_t>(client) * targets.rows_per_client + 1;
  std::vector<Clock::duration> executes(static_cast<size_t>(point.branches));
  for (int64_t i = 0;; ++i) {
    const Clock::time_point start = Clock::now();
    if (start >= window_end) return;
    // The client's rows in turn: the previous transaction's phase 2 (which
    // runs after Commit returns) has long finished by the time a row comes
    // round again, so no transaction waits for a lock.
    const int64_t row = first_row + i % targets.rows_per_client;
    std::string failure;
    std::string txid;
    Clock::time_point commit_start{};
    absl::StatusOr<BeginResult> begun = targets.coordinator->BeginWith(kTxTimeout);
    const Clock::time_point begun_at = Clock::now();
    if (!begun.ok()) {
      failure = absl::StrCat("Begin: ", StatusText(begun.status()));
    } else {
      txid = std::move(begun->txid);
      execute_options.named_in_commit = targets.name_branches && begun->checks_named_branches;
      // Named branches carry their signed votes (as Transaction does).
      execute_options.carries_vote_proof = execute_options.named_in_commit;
      std::vector<NamedBranch> named;
      failure =
          targets.branches_at_once
              ? ExecuteAtOnce(targets, point, i, row, txid, execute_options, &executes, &named)
              : ExecuteInTurn(targets, point, i, row, txid, execute_options, &executes, &named);
      if (!execute_options.named_in_commit) named.clear();
      if (failure.empty()) {
        commit_start = Clock::now();
        absl::StatusOr<CommitResult> commit = targets.coordinator->Commit(txid, named);
        if (!commit.ok()) {
          failure = absl::StrCat("Commit: ", StatusText(commit.status()));
        } else if (!commit->committed) {
          failure = absl::StrCat("Commit: aborted: ", commit->reason);
        }
      } else {
        (void)targets.coordinator->Abort(txid);  // best effort: the deadline aborts it anyway
      }
    }
    const Clock::time_point end = Clock::now();
    if (end < window_start || end >= window_end) continue;
    if (!failure.empty()) {
      ++tally->failed;
      if (tally->first_failure.empty()) tally->first_failure = absl::StrCat(txid, ": ", failure);
      continue;
    }
    ++tally->committed;
    const size_t bucket = static_cast<size_t>((end - window_start) / kBucket);
    if (bucket >= tally->per_bucket.size()) tally->per_bucket.resize(bucket + 1);
    ++tally->per_bucket[bucket];
    tally->commit.push_back(end - commit_start);
    tally->txn.push_back(end - start);
    tally->begin.push_back(begun_at - start);
    tally->execute.insert(tally->execute.end(), executes.begin(), executes.end());
  }
}

// CPU seconds of the daemons and of this process, at one instant.
struct CpuSnapshot {
  double coordinator = 0;
  double agents = 0;
  double self = 0;
  MachineCpu machine;
};

absl::StatusOr<CpuSnapshot> TakeCpuSnapshot(const Targets& targets) {
  CpuSnapshot snapshot;
  absl::StatusOr<double> coordinator = ProcessCpuSeconds(targets.coordinator_pid);
  if (!coordinator.ok()) return coordinator.status();
  snapshot.coordinator = *coordinator;
  for (pid_t pid : targets.agent_pids) {
    absl::StatusOr<double> agent = ProcessCpuSeconds(pid);
    if (!agent.ok()) return agent.status();
    snapshot.agents += *agent;
  }
  snapshot.self = SelfCpuSeconds();
  absl::StatusOr<MachineCpu> machine = MachineCpuSeconds();
  if (!machine.ok()) return machine.status();
  snapshot.machine = *machine;
  return snapshot;
}

}  // namespace

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kTwoPhase:
      return "2pc";
    case Mode::kEarlyPrepare:
      return "early";
    case Mode::kOnePhase:
      return "1pc";
  }
  return "?";
}

bool ParseMode(const std::string& name, Mode* mode) {
  for (Mode m : {Mode::kTwoPhase, Mode::kEarlyPrepare, Mode::kOnePhase}) {
    if (name == ModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

absl::Status ValidatePoint(const Point& point, int agents) {
  const std::string name =
      absl::StrCat(ModeName(point.mode), ":", point.branches, ":", point.clients);
  if (point.clients < 1) return absl::InvalidArgumentError(name + ": clients must be >= 1");
  if (point.branches < 1 || point.branches > agents) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": branches must be between 1 and --agents (", agents, ")"));
  }
  if (point.mode == Mode::kOnePhase && point.branches != 1) {
    return absl::InvalidArgumentError(name + ": one-phase commit has exactly one branch");
  }
  if (point.mode == Mode::kTwoPhase && point.branches < 2) {
    return absl::InvalidArgumentError(
        name + ": plain 2PC needs 2+ branches (with one, Commit is one-phase: use 1pc)");
  }
  return absl::OkStatus();
}

absl::Status CreateAccounts(const std::vector<AgentClient*>& agents, int clients,
                            int rows_per_client) {
  const int rows = clients * rows_per_client;
  std::vector<SqlStatement> statements = {{kCreateTable, {}}};
  for (int first = 1; first <= rows; first += kRowsPerInsert) {
    std::string sql = "INSERT INTO accounts (id, balance) VALUES ";
    const int last = std::min(rows, first + kRowsPerInsert - 1);
    for (int id = first; id <= last; ++id)
      absl::StrAppend(&sql, id == first ? "" : ",", "(", id, ",1000)");
    statements.push_back({std::move(sql), {}});
  }
  for (size_t i = 0; i < agents.size(); ++i) {
    absl::StatusOr<ExecuteResult> result = agents[i]->Execute(/*txid=*/"", statements);
    if (!result.ok()) {
      return absl::Status(result.status().code(), absl::StrCat("creating accounts at agent #", i,
                                                               ": ", result.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PointResult> RunPoint(const Targets& targets, const Point& point,
                                     Clock::duration warmup, Clock::duration measure) {
  std::vector<ClientTally> tallies(static_cast<size_t>(point.clients));
  const Clock::time_point now = Clock::now();
  const double now_unix = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  timespec raw{};
  clock_gettime(CLOCK_MONOTONIC_RAW, &raw);
  const double now_raw = static_cast<double>(raw.tv_sec) + static_cast<double>(raw.tv_nsec) / 1e9;
  const Clock::time_point window_start = now + warmup;
  const Clock::time_point window_end = window_start + measure;
  std::vector<std::thread> threads;
  threads.reserve(tallies.size());
  for (int c = 0; c < point.clients; ++c) {
    threads.emplace_back(ClientLoop, std::cref(targets), std::cref(point), c, window_start,
                         window_end, &tallies[c]);
  }
  absl::StatusOr<std::vector<Clock::duration>> fsync_samples;
  std::thread fsync_sampler([&] {
    fsync_samples = SampleFsync(targets.floor_dir, targets.fsync_record_bytes, window_start,
                                window_end, kFsyncSampleInterval);
  });
  std::this_thread::sleep_until(window_start);
  absl::StatusOr<CpuSnapshot> before = TakeCpuSnapshot(targets);
  std::this_thread::sleep_until(window_end);
  absl::StatusOr<CpuSnapshot> after = TakeCpuSnapshot(targets);
  for (std::thread& thread : threads) thread.join();
  fsync_sampler.join();
  if (!fsync_samples.ok()) return fsync_samples.status();
  if (!before.ok()) return before.status();
  if (!after.ok()) return after.status();

  PointResult result;
  result.point = point;
  result.seconds = std::chrono::duration<double>(measure).count();
  result.window_start_unix = now_unix + std::chrono::duration<double>(warmup).count();
  result.window_start_monotonic_raw = now_raw + std::chrono::duration<double>(warmup).count();
  result.coordinator_cpu_s = after->coordinator - before->coordinator;
  result.agents_cpu_s = after->agents - before->agents;
  result.client_cpu_s = after->self - before->self;
  const double machine_total = after->machine.total - before->machine.total;
  result.machine_busy =
      machine_total > 0 ? (after->machine.busy - before->machine.busy) / machine_total : 0;
  std::vector<Clock::duration> commit, txn, begin, execute;
  for (ClientTally& tally : tallies) {
    result.committed += tally.committed;
    result.failed += tally.failed;
    if (result.first_failure.empty()) result.first_failure = tally.first_failure;
    commit.insert(commit.end(), tally.commit.begin(), tally.commit.end());
    txn.insert(txn.end(), tally.txn.begin(), tally.txn.end());
    begin.insert(begin.end(), tally.begin.begin(), tally.begin.end());
    execute.insert(execute.end(), tally.execute.begin(), tally.execute.end());
    if (tally.per_bucket.size() > result.commits_per_100ms.size()) {
      result.commits_per_100ms.resize(tally.per_bucket.size());
    }
    for (size_t i = 0; i < tally.per_bucket.size(); ++i) {
      result.commits_per_100ms[i] += tally.per_bucket[i];
    }
  }
  result.fsync = Summarize(*std::move(fsync_samples));
  result.commit = Summarize(std::move(commit));
  result.txn = Summarize(std::move(txn));
  result.begin = Summarize(std::move(begin));
  result.execute = Summarize(std::move(execute));

  // Every row this point touched, at every agent it used: the barrier's
  // write waits for each row's last branch to finish phase 2.
  const std::vector<AgentClient*> used(targets.agents.begin(),
                                       targets.agents.begin() + point.branches);
  absl::Status drained = testing::AwaitPhase2(
      *targets.coordinator, used,
      {"UPDATE accounts SET balance = balance + 1 WHERE id <= ?1",
       {static_cast<int64_t>(point.clients) * targets.rows_per_client}},
      static_cast<int64_t>(point.clients) * targets.rows_per_client, kDrainTimeout);
  if (!drained.ok()) return drained;
  return result;
}

}  // namespace txcoord::bench
