// Throw-away PostgreSQL servers for the native-2PC baseline (pg2pc_bench):
// each initdb'd into a fresh directory and run on a free loopback port with
// durable commits and prepared transactions enabled; stopped, and their
// data deleted, when the object goes away.
//
//   absl::StatusOr<std::unique_ptr<PgServers>> pg = PgServers::Start({.servers = 3});
//   PGconn* conn = PQconnectdb((*pg)->conninfo(0).c_str());
#ifndef TXCOORD_BENCH_PG_SERVERS_H_
#define TXCOORD_BENCH_PG_SERVERS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness/daemon_process.h"
#include "harness/temp_dir.h"

namespace txcoord::bench {

// The directory of PostgreSQL's server programs (initdb, postgres):
// $PG_BIN_DIR if set, else the newest /usr/lib/postgresql/*/bin (Debian's
// layout). NOT_FOUND, naming the Debian package, if there is none.
absl::StatusOr<std::string> PgBinDir();

struct PgServersOptions {
  int servers = 3;
  // Enough for every client's connection to each server, plus a margin for
  // the checks.
  int max_connections = 100;
  int max_prepared_transactions = 100;
  bool keep_dir = false;  // leave the data and logs in place
};

// Not thread-safe (one owner). The data directories (pg0, pg1, ...) and
// the servers' logs go in a fresh directory under $TMPDIR (else /tmp). The servers run as the
// invoking user, or as the `postgres` user when this process is root (PostgreSQL refuses root).
class PgServers final {
 public:
  // Runs initdb (once, copied for the other servers), then starts the
  // servers one by one.
  // FAILED_PRECONDITION when running as root and there is no `postgres`
  // user; errors quote the end of a failed program's log.
  static absl::StatusOr<std::unique_ptr<PgServers>> Start(const PgServersOptions& options);

  // Stops what still runs (see Stop), then deletes the directory unless
  // told to keep it.
  ~PgServers();
  PgServers(const PgServers&) = delete;
  PgServers& operator=(const PgServers&) = delete;

  int count() const { return static_cast<int>(servers_.size()); }
  // libpq connection string of server `i` as its superuser, database
  // `postgres`.
  std::string conninfo(int i) const;
  pid_t pid(int i) const { return servers_.at(i).process->pid(); }
  const std::string& dir() const { return dir_.path(); }
  std::string LogTail(int i) const { return servers_.at(i).process->LogTail(); }

  // CPU seconds used so far by every server with all its processes (the
  // postmaster, one backend per connection, the WAL writer...).
  absl::StatusOr<double> CpuSeconds() const;

  // Fast shutdown of every server (SIGINT: open transactions are rolled
  // back, prepared ones stay on disk), waiting for each to exit; SIGKILL
  // after 30 s. Idempotent.
  absl::Status Stop();

 private:
  struct Server {
    int port = 0;
    std::unique_ptr<testing::DaemonProcess> process;
  };

  explicit PgServers(testing::TempDir dir) : dir_(std::move(dir)) {}

  testing::TempDir dir_;  // declared first: removed after the servers stop
  std::vector<Server> servers_;
  bool stopped_ = false;
};

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_PG_SERVERS_H_
