// libpq for the native-2PC baseline (pg2pc_bench): connections that close
// themselves, statements run one at a time with their errors as statuses,
// and PgBranches, one client's connections to several servers driven
// together: a round sends a statement on each before it waits for any
// answer, as a client running its transaction's branches in parallel does.
//
//   absl::StatusOr<std::unique_ptr<PgBranches>> b = PgBranches::Connect({info0, info1});
//   absl::Status s = (*b)->Run({"PREPARE TRANSACTION 'g1'", "PREPARE TRANSACTION 'g1'"}, &replies);
#ifndef TXCOORD_BENCH_PG_CLIENT_H_
#define TXCOORD_BENCH_PG_CLIENT_H_

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace txcoord::bench {

struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
// An open connection; closed when destroyed.
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;

// Connects with a libpq connection string. UNAVAILABLE, with libpq's
// message, if the server does not answer.
absl::StatusOr<PgConn> PgConnect(const std::string& conninfo);

// Errors below: ABORTED for an SQL error (a transaction can be retried
// whole), UNAVAILABLE when the connection failed.

// One statement, or several separated by ';', synchronously.
absl::Status PgExec(PGconn* conn, const std::string& sql);

// The first column of the first row of a query.
absl::StatusOr<std::string> PgQueryValue(PGconn* conn, const std::string& sql);

// An empty query: one round trip that does no work.
absl::Status PgPing(PGconn* conn);

// What one connection answered to one round of PgBranches::Run.
struct BranchReply {
  absl::Status status;  // the first SQL error, if any
  std::string tag;      // command tag of the last statement ("PREPARE TRANSACTION")
  int64_t rows = 0;     // rows changed, all statements together
};

// One client's connections, one per server. Not thread-safe: one client
// thread owns it. The connections close with it.
class PgBranches final {
 public:
  static absl::StatusOr<std::unique_ptr<PgBranches>> Connect(
      const std::vector<std::string>& conninfo);

  PgBranches(const PgBranches&) = delete;
  PgBranches& operator=(const PgBranches&) = delete;

  size_t size() const { return conns_.size(); }

  // Sends sql[i] on connection i (none where sql[i] is empty; sql has
  // size() entries), then reads every answer. An error only if a
  // connection failed or stayed silent for 30 s: then the connections are
  // in an unknown state and the caller must drop them. SQL errors are in
  // the replies.
  absl::Status Run(const std::vector<std::string>& sql, std::vector<BranchReply>* replies);

 private:
  PgBranches() = default;
  std::string Error(size_t i) const;

  std::vector<PgConn> conns_;
};

}  // namespace txcoord::bench

#endif  // TXCOORD_BENCH_PG_CLIENT_H_
