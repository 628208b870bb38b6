#include "bench/pg_client.h"

#include <poll.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace txcoord::bench {
namespace {

// The baseline's statements wait for no lock, so silence this long means
// a server is stuck.
constexpr int kReplyTimeoutMs = 30000;

struct ResultClearer {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, ResultClearer>;

std::string ConnError(PGconn* conn) {
  return std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn)));
}

// A statement's error as a status.
absl::Status ResultError(PGconn* conn, const PGresult* result) {
  if (result == nullptr) return absl::UnavailableError(ConnError(conn));
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  return absl::AbortedError(
      absl::StrCat("[", state != nullptr ? state : "?", "] ",
                   absl::StripTrailingAsciiWhitespace(PQresultErrorMessage(result))));
}

bool Succeeded(const PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

}  // namespace

absl::StatusOr<PgConn> PgConnect(const std::string& conninfo) {
  PgConn conn(PQconnectdb(conninfo.c_str()));
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrCat("connect (", conninfo, "): ", ConnError(conn.get())));
  }
  return conn;
}

absl::Status PgExec(PGconn* conn, const std::string& sql) {
  PgResult result(PQexec(conn, sql.c_str()));
  if (result == nullptr || !Succeeded(result.get())) return ResultError(conn, result.get());
  return absl::OkStatus();
}

absl::StatusOr<std::string> PgQueryValue(PGconn* conn, const std::string& sql) {
  PgResult result(PQexec(conn, sql.c_str()));
  if (result == nullptr || !Succeeded(result.get())) return ResultError(conn, result.get());
  if (PQntuples(result.get()) < 1 || PQnfields(result.get()) < 1) {
    return absl::InternalError(absl::StrCat("no row from: ", sql));
  }
  return std::string(PQgetvalue(result.get(), 0, 0));
}

absl::Status PgPing(PGconn* conn) {
  PgResult result(PQexec(conn, ""));
  if (result == nullptr || PQresultStatus(result.get()) != PGRES_EMPTY_QUERY) {
    return ResultError(conn, result.get());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<PgBranches>> PgBranches::Connect(
    const std::vector<std::string>& conninfo) {
  std::unique_ptr<PgBranches> branches(new PgBranches);
  for (const std::string& info : conninfo) {
    absl::StatusOr<PgConn> conn = PgConnect(info);
    if (!conn.ok()) return conn.status();
    branches->conns_.push_back(*std::move(conn));
  }
  return branches;
}

absl::Status PgBranches::Run(const std::vector<std::string>& sql,
                             std::vector<BranchReply>* replies) {
  assert(sql.size() == conns_.size());
  replies->assign(conns_.size(), BranchReply());
  std::vector<bool> waiting(conns_.size(), false);
  int pending = 0;
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (sql[i].empty()) continue;
    if (PQsendQuery(conns_[i].get(), sql[i].c_str()) == 0) {
      return absl::UnavailableError(absl::StrCat("send to branch #", i, ": ", Error(i)));
    }
    waiting[i] = true;
    ++pending;
  }
  std::vector<pollfd> fds;
  std::vector<size_t> index;
  while (pending > 0) {
    fds.clear();
    index.clear();
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (!waiting[i]) continue;
      fds.push_back({PQsocket(conns_[i].get()), POLLIN, 0});
      index.push_back(i);
    }
    const int ready = poll(fds.data(), fds.size(), kReplyTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no answer within ", kReplyTimeoutMs / 1000, " s"));
    }
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      const size_t i = index[k];
      PGconn* conn = conns_[i].get();
      if (PQconsumeInput(conn) == 0) {
        return absl::UnavailableError(absl::StrCat("read from branch #", i, ": ", Error(i)));
      }
      while (PQisBusy(conn) == 0) {
        PgResult result(PQgetResult(conn));
        if (result == nullptr) {  // every statement of the round answered
          waiting[i] = false;
          --pending;
          break;
        }
        BranchReply& reply = (*replies)[i];
        if (!Succeeded(result.get())) {
          if (reply.status.ok()) reply.status = ResultError(conn, result.get());
          continue;
        }
        reply.tag = PQcmdStatus(result.get());
        int64_t rows = 0;
        if (absl::SimpleAtoi(PQcmdTuples(result.get()), &rows)) reply.rows += rows;
      }
    }
  }
  return absl::OkStatus();
}

std::string PgBranches::Error(size_t i) const { return ConnError(conns_[i].get()); }

}  // namespace txcoord::bench
