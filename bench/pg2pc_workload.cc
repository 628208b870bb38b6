#include "bench/pg2pc_workload.h"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/pg_client.h"
#include "bench/proc_stats.h"

namespace txcoord::bench {
namespace {

constexpr Clock::duration kStopPoll = std::chrono::milliseconds(20);

// What one client saw inside the measured window.
struct ClientTally {
  std::vector<Clock::duration> txn, commit, update, prepare, commit_prepared;
  int64_t committed = 0;
  int64_t failed = 0;
  std::string first_failure;
};

struct TransferTimes {
  Clock::time_point start, prepare, prepared, end;
};

// One transfer. Returns what went wrong, empty if it committed; sets
// `fatal` when the client must stop (a connection failed, or a branch may
// be left prepared: a person would have to settle it).
std::string Transfer(PgBranches& branches, const std::string& gid, int64_t row,
                     TransferTimes* times, bool* fatal) {
  const size_t n = branches.size();
  std::vector<std::string> sql(n);
  std::vector<BranchReply> replies;
  auto run = [&](const char* round) -> std::string {
    absl::Status status = branches.Run(sql, &replies);
    if (status.ok()) return "";
    *fatal = true;
    return absl::StrCat(round, ": ", status.ToString());
  };

  // Branch 0 pays every other branch 1, as txn_bench's transfer does.
  for (size_t b = 0; b < n; ++b) {
    const int64_t delta = b == 0 ? 1 - static_cast<int64_t>(n) : 1;
    sql[b] =
        absl::StrCat("BEGIN; UPDATE accounts SET balance = balance + ", delta, " WHERE id = ", row);
  }
  times->start = Clock::now();
  if (std::string error = run("BEGIN; UPDATE"); !error.empty()) return error;
  std::string failure;
  for (size_t b = 0; b < n && failure.empty(); ++b) {
    if (!replies[b].status.ok()) {
      failure = absl::StrCat("UPDATE at branch #", b, ": ", replies[b].status.ToString());
    } else if (replies[b].rows != 1) {
      failure = absl::StrCat("UPDATE at branch #", b, " changed ", replies[b].rows, " rows");
    }
  }
  if (!failure.empty()) {
    sql.assign(n, "ROLLBACK");
    if (std::string error = run("ROLLBACK"); !error.empty()) return error;
    return failure;
  }

  times->prepare = Clock::now();
  sql.assign(n, absl::StrCat("PREPARE TRANSACTION '", gid, "'"));
  if (std::string error = run("PREPARE TRANSACTION"); !error.empty()) return error;
  times->prepared = Clock::now();
  // A branch that could not prepare has rolled back (its tag then says
  // ROLLBACK); presumed abort undoes those that did.
  sql.assign(n, "");
  for (size_t b = 0; b < n; ++b) {
    if (replies[b].status.ok() && replies[b].tag == "PREPARE TRANSACTION") {
      sql[b] = absl::StrCat("ROLLBACK PREPARED '", gid, "'");
    } else if (failure.empty()) {
      failure =
          absl::StrCat("PREPARE at branch #", b, ": ",
                       replies[b].status.ok() ? replies[b].tag : replies[b].status.ToString());
    }
  }
  if (!failure.empty()) {
    if (std::string error = run("ROLLBACK PREPARED"); !error.empty()) return error;
    return failure;
  }

  sql.assign(n, absl::StrCat("COMMIT PREPARED '", gid, "'"));
  if (std::string error = run("COMMIT PREPARED"); !error.empty()) return error;
  times->end = Clock::now();
  for (size_t b = 0; b < n; ++b) {
    if (!replies[b].status.ok()) {
      *fatal = true;
      return absl::StrCat("COMMIT PREPARED at branch #", b, ": ", replies[b].status.ToString());
    }
  }
  return "";
}

// One client: transfers back to back until the window ends or `stop`.
void ClientLoop(const PgTargets& targets, PgBranches* branches, int client,
                Clock::time_point window_start, Clock::time_point window_end,
                const std::atomic<bool>& stop, ClientTally* tally) {
  const int64_t first_row = static_cast<int64_t>(client) * targets.rows_per_client + 1;
  // A GID need only be unique among the transactions prepared on a server
  // at one time; each server holds one branch of a transfer.
  const std::string gid_prefix = absl::StrCat("pg2pc-", getpid(), "-", client, "-");
  for (int64_t i = 0;; ++i) {
    if (Clock::now() >= window_end || stop.load()) return;
    // The client's rows in turn: no transfer ever waits for a lock.
    const int64_t row = first_row + i % targets.rows_per_client;
    TransferTimes times;
    bool fatal = false;
    const std::string failure =
        Transfer(*branches, absl::StrCat(gid_prefix, i), row, &times, &fatal);
    const Clock::time_point end = Clock::now();
    if (end >= window_start && end < window_end) {
      if (!failure.empty()) {
        ++tally->failed;
        if (tally->first_failure.empty()) tally->first_failure = failure;
      } else {
        ++tally->committed;
        tally->txn.push_back(times.end - times.start);
        tally->commit.push_back(times.end - times.prepare);
        tally->update.push_back(times.prepare - times.start);
        tally->prepare.push_back(times.prepared - times.prepare);
        tally->commit_prepared.push_back(times.end - times.prepared);
      }
    } else if (fatal && tally->first_failure.empty()) {
      tally->first_failure = failure;  // outside the window, but it ends the client
      ++tally->failed;
    }
    if (fatal) return;
  }
}

struct CpuSnapshot {
  double servers = 0;
  double self = 0;
  MachineCpu machine;
};

absl::StatusOr<CpuSnapshot> TakeCpuSnapshot(const PgTargets& targets) {
  CpuSnapshot snapshot;
  absl::StatusOr<double> servers = targets.servers_cpu();
  if (!servers.ok()) return servers.status();
  snapshot.servers = *servers;
  snapshot.self = SelfCpuSeconds();
  absl::StatusOr<MachineCpu> machine = MachineCpuSeconds();
  if (!machine.ok()) return machine.status();
  snapshot.machine = *machine;
  return snapshot;
}

// Sleeps until `when`, or less once `stop` is set; true if it was.
bool SleepUntil(Clock::time_point when, const std::atomic<bool>& stop) {
  while (Clock::now() < when) {
    if (stop.load()) return true;
    std::this_thread::sleep_for(std::min<Clock::duration>(kStopPoll, when - Clock::now()));
  }
  return stop.load();
}

void Append(std::vector<Clock::duration>* to, const std::vector<Clock::duration>& from) {
  to->insert(to->end(), from.begin(), from.end());
}

}  // namespace

absl::Status CreatePgAccounts(const PgTargets& targets, int clients) {
  const int64_t rows = static_cast<int64_t>(clients) * targets.rows_per_client;
  for (size_t i = 0; i < targets.conninfo.size(); ++i) {
    absl::StatusOr<PgConn> conn = PgConnect(targets.conninfo[i]);
    if (!conn.ok()) return conn.status();
    for (const std::string& sql :
         {std::string("CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL)"),
          absl::StrCat("INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, ", rows,
                       ") AS g"),
          std::string("VACUUM ANALYZE accounts")}) {
      if (absl::Status s = PgExec(conn->get(), sql); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("server #", i, ": ", sql, ": ", s.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PgPointResult> RunPgPoint(const PgTargets& targets, int clients,
                                         Clock::duration warmup, Clock::duration measure,
                                         const std::atomic<bool>& stop) {
  // Connected before the clock starts: a real client keeps its connections.
  std::vector<std::unique_ptr<PgBranches>> branches;
  for (int c = 0; c < clients; ++c) {
    absl::StatusOr<std::unique_ptr<PgBranches>> connected = PgBranches::Connect(targets.conninfo);
    if (!connected.ok()) return connected.status();
    branches.push_back(*std::move(connected));
  }
  std::vector<ClientTally> tallies(static_cast<size_t>(clients));
  const Clock::time_point window_start = Clock::now() + warmup;
  Clock::time_point window_end = window_start + measure;
  std::vector<std::thread> threads;
  threads.reserve(tallies.size());
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back(ClientLoop, std::cref(targets), branches[c].get(), c, window_start,
                         window_end, std::cref(stop), &tallies[c]);
  }
  SleepUntil(window_start, stop);
  absl::StatusOr<CpuSnapshot> before = TakeCpuSnapshot(targets);
  if (SleepUntil(window_end, stop)) window_end = std::max(window_start, Clock::now());
  absl::StatusOr<CpuSnapshot> after = TakeCpuSnapshot(targets);
  for (std::thread& thread : threads) thread.join();
  if (!before.ok()) return before.status();
  if (!after.ok()) return after.status();

  PgPointResult result;
  result.clients = clients;
  result.branches = static_cast<int>(targets.conninfo.size());
  result.seconds = std::chrono::duration<double>(window_end - window_start).count();
  result.servers_cpu_s = after->servers - before->servers;
  result.client_cpu_s = after->self - before->self;
  const double machine_total = after->machine.total - before->machine.total;
  result.machine_busy =
      machine_total > 0 ? (after->machine.busy - before->machine.busy) / machine_total : 0;
  std::vector<Clock::duration> txn, commit, update, prepare, commit_prepared;
  for (const ClientTally& tally : tallies) {
    result.committed += tally.committed;
    result.failed += tally.failed;
    if (result.first_failure.empty()) result.first_failure = tally.first_failure;
    Append(&txn, tally.txn);
    Append(&commit, tally.commit);
    Append(&update, tally.update);
    Append(&prepare, tally.prepare);
    Append(&commit_prepared, tally.commit_prepared);
  }
  result.txn = Summarize(std::move(txn));
  result.commit = Summarize(std::move(commit));
  result.update = Summarize(std::move(update));
  result.prepare = Summarize(std::move(prepare));
  result.commit_prepared = Summarize(std::move(commit_prepared));
  return result;
}

absl::Status CheckPgBank(const PgTargets& targets, int64_t expected_total) {
  int64_t total = 0;
  int64_t prepared = 0;
  for (const std::string& conninfo : targets.conninfo) {
    absl::StatusOr<PgConn> conn = PgConnect(conninfo);
    if (!conn.ok()) return conn.status();
    absl::StatusOr<std::string> sum =
        PgQueryValue(conn->get(), "SELECT sum(balance) FROM accounts");
    if (!sum.ok()) return sum.status();
    absl::StatusOr<std::string> left =
        PgQueryValue(conn->get(), "SELECT count(*) FROM pg_prepared_xacts");
    if (!left.ok()) return left.status();
    int64_t server_sum = 0;
    int64_t server_prepared = 0;
    if (!absl::SimpleAtoi(*sum, &server_sum) || !absl::SimpleAtoi(*left, &server_prepared)) {
      return absl::InternalError(absl::StrCat("unreadable check results: ", *sum, ", ", *left));
    }
    total += server_sum;
    prepared += server_prepared;
  }
  if (total != expected_total || prepared != 0) {
    return absl::DataLossError(absl::StrCat("balances add up to ", total, " (expected ",
                                            expected_total, "); ", prepared,
                                            " transactions left prepared"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Clock::duration>> MeasurePgRoundTrip(const std::string& conninfo,
                                                                Clock::duration duration) {
  absl::StatusOr<PgConn> conn = PgConnect(conninfo);
  if (!conn.ok()) return conn.status();
  // The backend's first answers warm its caches: not counted.
  for (int i = 0; i < 3; ++i) {
    if (absl::Status s = PgPing(conn->get()); !s.ok()) return s;
  }
  std::vector<Clock::duration> samples;
  const Clock::time_point end = Clock::now() + duration;
  while (samples.size() < 10 || Clock::now() < end) {
    const Clock::time_point start = Clock::now();
    if (absl::Status s = PgPing(conn->get()); !s.ok()) return s;
    samples.push_back(Clock::now() - start);
  }
  return samples;
}

absl::Status CheckpointAll(const PgTargets& targets) {
  for (const std::string& conninfo : targets.conninfo) {
    absl::StatusOr<PgConn> conn = PgConnect(conninfo);
    if (!conn.ok()) return conn.status();
    if (absl::Status s = PgExec(conn->get(), "CHECKPOINT"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PgDescription(const PgTargets& targets) {
  absl::StatusOr<PgConn> conn = PgConnect(targets.conninfo.at(0));
  if (!conn.ok()) return conn.status();
  return PgQueryValue(
      conn->get(),
      "SELECT concat_ws(', ', (SELECT 'PostgreSQL ' || setting FROM pg_settings WHERE name = "
      "'server_version'), (SELECT string_agg(name || '=' || current_setting(name), ', ' "
      "ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', "
      "'wal_sync_method', 'full_page_writes', 'shared_buffers', 'max_prepared_transactions')))");
}

}  // namespace txcoord::bench
