// event_counter: an example consumer service for transactional messages.
// It consumes a JetStream stream (optionally one filter subject) through
// txcoord::Consumer into its own SQLite database: every event becomes a row
// of `events`, and `counters` counts events per topic, both in the same
// transaction as the consumer's inbox row, so each event counts exactly
// once and in stream order however often it is delivered. The demo and the
// fault tests run it next to txagent's relay, and kill it.
#include <signal.h>
#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/consumer.h"
#include "common/failpoint.h"
#include "common/flag_usage.h"
#include "common/logging.h"
#include "common/sqlite_db.h"
#include "rpc/daemon.h"

ABSL_FLAG(std::string, nats_url, "nats://127.0.0.1:4222", "NATS server(s), comma-separated.");
ABSL_FLAG(std::string, stream, "", "JetStream stream to consume (must exist).");
ABSL_FLAG(std::string, durable, "event_counter",
          "Durable consumer name (no '.'); its position is kept in --db under this name.");
ABSL_FLAG(std::string, filter_subject, "", "Consume only this subject (wildcards allowed).");
ABSL_FLAG(std::string, db, "", "This service's SQLite database (created if missing).");
ABSL_FLAG(int, batch_size, 256, "Messages applied per SQLite transaction at most.");
ABSL_FLAG(absl::Duration, ack_wait, absl::Seconds(30),
          "When the server hands an unacknowledged message out again.");
ABSL_FLAG(int, max_deliveries, 5,
          "Deliveries of an event whose apply keeps failing before it is dead-lettered.");
ABSL_FLAG(absl::Duration, stats_interval, absl::Seconds(10), "How often to log the counts.");
ABSL_FLAG(std::string, failpoints, "",
          "For crash tests only: failpoints to arm, e.g. \"consumer-after-commit=crash@3\" "
          "(common/failpoint.h). Also read from TXCOORD_FAILPOINTS.");
ABSL_FLAG(std::string, log_level, "info",
          "Least severe log level printed: debug, info, warning, error.");

namespace txcoord {
namespace {

constexpr char kUsage[] =
    "event_counter: an example consumer of txcoord's transactional messages.\n"
    "Consumes --stream (optionally only --filter_subject) from --nats_url into the SQLite\n"
    "database --db: one row per event in events(seq, msg_id UNIQUE, topic, key, txid,\n"
    "payload), and counters(topic, count). Each event is applied exactly once, in stream\n"
    "order, however often NATS delivers it (txcoord::Consumer, client/consumer.h).\n"
    "Once consuming it prints on stdout:\n"
    "  event_counter consuming STREAM/DURABLE from URL into DB\n"
    "logs its counts every --stats_interval on stderr, and stops cleanly on SIGTERM.\n"
    "While no NATS server answers at start it keeps trying.\n\n"
    "Usage: event_counter --stream=BANK --db=events.db [--nats_url=nats://HOST:PORT]";

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  msg_id TEXT UNIQUE,
  topic TEXT,
  key TEXT,
  txid TEXT,
  payload BLOB);
CREATE TABLE IF NOT EXISTS counters(topic TEXT PRIMARY KEY, count INTEGER NOT NULL);
)sql";

absl::Status CountEvent(sqlite3* db, const InboundMessage& m) {
  absl::Status status = RunWith(
      db, "INSERT INTO events(msg_id, topic, key, txid, payload) VALUES(?1, ?2, ?3, ?4, ?5)",
      {m.id, m.topic, m.key, m.txid, Blob{m.payload}});
  if (!status.ok()) return status;
  return RunWith(db,
                 "INSERT INTO counters(topic, count) VALUES(?1, 1) "
                 "ON CONFLICT(topic) DO UPDATE SET count = count + 1",
                 {m.topic});
}

absl::Status CreateTables(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open(path.c_str(), &raw);
  SqliteDb db(raw);
  absl::Status status =
      rc == SQLITE_OK ? ExecSql(db.get(), kSchema) : SqliteStatus(db.get(), rc, "opening");
  if (status.ok()) return status;
  return absl::FailedPreconditionError(
      absl::StrCat("cannot create tables in ", path, ": ", status.message()));
}

// Waits up to `timeout` for SIGTERM or SIGINT (blocked in every thread).
bool ShutdownRequested(absl::Duration timeout) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  timespec wait = absl::ToTimespec(timeout);
  return sigtimedwait(&signals, nullptr, &wait) > 0;
}

int Main() {
  LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    std::fprintf(stderr, "event_counter: --log_level must be debug, info, warning or error\n");
    return 2;
  }
  SetMinLogLevel(level);
  SetLogTag("event_counter");
  absl::Status armed = ArmFailpointsFromEnvironment();
  if (armed.ok() && !absl::GetFlag(FLAGS_failpoints).empty()) {
    armed = ArmFailpoints(absl::GetFlag(FLAGS_failpoints));
  }
  if (!armed.ok()) {
    TXLOG(ERROR) << "cannot start: " << armed;
    return 2;
  }
  ConsumerOptions options;
  options.url = absl::GetFlag(FLAGS_nats_url);
  options.stream = absl::GetFlag(FLAGS_stream);
  options.durable = absl::GetFlag(FLAGS_durable);
  options.filter_subject = absl::GetFlag(FLAGS_filter_subject);
  options.db_path = absl::GetFlag(FLAGS_db);
  options.batch_size = absl::GetFlag(FLAGS_batch_size);
  options.max_ack_pending = std::max(1024, options.batch_size);
  options.ack_wait = absl::GetFlag(FLAGS_ack_wait);
  options.max_deliveries = absl::GetFlag(FLAGS_max_deliveries);
  if (options.stream.empty() || options.db_path.empty()) {
    std::fprintf(stderr, "event_counter: --stream and --db are required (see --help)\n");
    return 2;
  }
  if (absl::Status status = CreateTables(options.db_path); !status.ok()) {
    TXLOG(ERROR) << "cannot start: " << status;
    return 1;
  }

  std::unique_ptr<Consumer> consumer;
  for (absl::Duration retry = absl::Milliseconds(100);;
       retry = std::min(retry * 2, absl::Seconds(5))) {
    absl::StatusOr<std::unique_ptr<Consumer>> created = Consumer::Create(options, CountEvent);
    if (created.ok()) {
      consumer = std::move(*created);
      break;
    }
    if (!absl::IsUnavailable(created.status())) {
      TXLOG(ERROR) << "cannot start: " << created.status();
      return 1;
    }
    TXLOG(WARNING) << created.status() << "; trying again in " << retry;
    if (ShutdownRequested(retry)) return 0;
  }
  // Said before the first fetch: a crash while consuming (a failpoint)
  // must come after the line a harness waits for, never race it.
  std::printf("event_counter consuming %s/%s from %s into %s\n", options.stream.c_str(),
              options.durable.c_str(), options.url.c_str(), options.db_path.c_str());
  std::fflush(stdout);
  consumer->Start();

  while (!ShutdownRequested(absl::GetFlag(FLAGS_stats_interval))) {
    ConsumerStats stats = consumer->stats();
    TXLOG(INFO) << "applied=" << stats.applied << " duplicates=" << stats.duplicates
                << " already_applied=" << stats.already_applied
                << " dead_lettered=" << stats.dead_lettered << " redelivered=" << stats.redelivered
                << " errors=" << stats.errors << " position=" << stats.position;
  }
  consumer->Stop();
  ConsumerStats stats = consumer->stats();
  TXLOG(INFO) << "stopped: applied=" << stats.applied << " position=" << stats.position;
  return 0;
}

}  // namespace
}  // namespace txcoord

int main(int argc, char** argv) {
  // Before any thread starts, so that only the main thread takes them.
  txcoord::BlockShutdownSignals();
  txcoord::NormalizeFlagNames(argc, argv);
  txcoord::SetFlagUsage(txcoord::kUsage);
  absl::ParseCommandLine(argc, argv);
  return txcoord::Main();
}
