// Transactional messages through kill -9: clients run transactions that
// publish messages (a quarter of them aborted on purpose) while the relaying
// agent, nats-server and the consumer service are each killed with SIGKILL
// at random points of the workload and restarted. At the end every message
// of a committed transaction is applied in the consumer's database exactly
// once, none of an aborted one is, and per key they were applied in commit
// order.
//
// For a longer run:
//   TXCOORD_MESSAGING_TXNS=3000 TXCOORD_MESSAGING_KILLS=40
//   build/tests/messaging/messaging_fault_test
#include <sqlite3.h>

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/cluster.h"
#include "harness/daemon_process.h"
#include "harness/jetstream.h"
#include "harness/nats_server.h"
#include "harness/progress.h"
#include "harness/sqlite_inspect.h"

namespace txcoord::testing {
namespace {

constexpr int kWorkers = 4;
constexpr char kStream[] = "BANK";
constexpr char kTopic[] = "bank.orders";

// What a worker's transaction came to, once known.
enum class Fate { kCommitted, kAborted, kUnknown };

struct Sent {
  int worker = 0;
  int seq = 0;  // the worker's own counter: its commit order
  std::string txid;
  Fate fate = Fate::kUnknown;
};

// The consumer service (examples/event_counter) as a child process that the
// test kills and starts again on the same database.
class EventCounterProcess final {
 public:
  EventCounterProcess(std::string url, std::string db_path, std::string log_path)
      : url_(std::move(url)), db_path_(std::move(db_path)), log_path_(std::move(log_path)) {}

  absl::Status Start() {
    absl::StatusOr<std::string> binary = EventCounterBinary();
    if (!binary.ok()) return binary.status();
    DaemonOptions options;
    options.binary = *binary;
    options.args = {"--nats_url=" + url_, absl::StrCat("--stream=", kStream), "--durable=counter",
                    "--db=" + db_path_};
    options.log_path = log_path_;
    options.ready_log_text = absl::StrCat("event_counter consuming ", kStream, "/counter from ");
    absl::StatusOr<std::unique_ptr<DaemonProcess>> started = DaemonProcess::Start(options);
    if (!started.ok()) return started.status();
    process_ = *std::move(started);
    return absl::OkStatus();
  }
  absl::Status Kill9() { return process_ == nullptr ? absl::OkStatus() : process_->Kill9(); }
  const std::string& db_path() const { return db_path_; }

 private:
  const std::string url_;
  const std::string db_path_;
  const std::string log_path_;
  std::unique_ptr<DaemonProcess> process_;
};

// One consumed event, in the order the consumer applied them.
struct Applied {
  int worker = 0;
  int seq = 0;
  std::string key;
};

absl::StatusOr<std::vector<Applied>> ReadApplied(const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open ", db_path));
  }
  sqlite3_stmt* stmt = nullptr;
  std::vector<Applied> applied;
  int rc = sqlite3_prepare_v2(db, "SELECT key, CAST(payload AS TEXT) FROM events ORDER BY seq", -1,
                              &stmt, nullptr);
  while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    Applied a;
    a.key = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    std::vector<std::string> parts =
        absl::StrSplit(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)), ':');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &a.worker) ||
        !absl::SimpleAtoi(parts[1], &a.seq)) {
      rc = SQLITE_CORRUPT;
      break;
    }
    applied.push_back(a);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (rc != SQLITE_DONE && rc != SQLITE_OK) {
    return absl::InternalError(absl::StrCat("reading events from ", db_path, ": rc ", rc));
  }
  return applied;
}

class MessagingFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.agents = 2;
    options.agent_names = {"orders", "ledger"};
    options.cluster_id = "msgfault";
    options.coordinator_flags = {"--phase2_retry_max=200ms", "--prepare_timeout=2s"};
    options.agent_flags = {"--lock_timeout=500ms", "--branch_idle_timeout=2s"};
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<std::unique_ptr<NatsServer>> nats = NatsServer::Start(cluster_->dir() + "/nats");
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    // The same stream the relay would make, made first so that the consumer
    // can start before the relay's first publish.
    absl::Status stream = CreateStream(nats_->url(), {kStream, {"bank.>"}, absl::Minutes(2)});
    ASSERT_TRUE(stream.ok()) << stream;
    // The orders agent relays; it makes the stream when it first connects.
    cluster_->SetAgentExtraFlags(
        0, {"--nats_url=" + nats_->url(), absl::StrCat("--outbox_stream=", kStream),
            "--outbox_subjects=bank.>", "--outbox_publish_timeout=1s"});
    ASSERT_TRUE(cluster_->RestartAgent(0).ok());
    consumer_ = std::make_unique<EventCounterProcess>(
        nats_->url(), cluster_->dir() + "/consumer.db", cluster_->dir() + "/consumer.log");
    ASSERT_TRUE(consumer_->Start().ok());
    ASSERT_TRUE(Schema().ok());

    ClientOptions client_options;
    client_options.call_timeout = absl::Seconds(3);
    client_options.commit_timeout = absl::Seconds(5);
    client_ = std::make_unique<Client>(cluster_->coordinator_address(), client_options);
    AgentClientOptions agent_options;
    agent_options.call_timeout = absl::Seconds(3);
    orders_ = std::make_unique<AgentClient>(cluster_->agent_address(0), agent_options);
    ledger_ = std::make_unique<AgentClient>(cluster_->agent_address(1), agent_options);
  }

  absl::Status Schema() {
    absl::StatusOr<ExecuteResult> orders =
        AgentClient(cluster_->agent_address(0))
            .Execute("",
                     {{"CREATE TABLE orders(worker INTEGER, seq INTEGER, PRIMARY KEY(worker, seq))",
                       {}}});
    if (!orders.ok()) return orders.status();
    return AgentClient(cluster_->agent_address(1))
        .Execute("", {{"CREATE TABLE ledger(txid TEXT PRIMARY KEY)", {}}})
        .status();
  }

  // One transaction of `worker`: an order row and its message at the
  // orders agent, a ledger row at the other; aborted on purpose if `abort`.
  Fate RunOne(int worker, int seq, bool abort, std::string* txid_out) {
    absl::StatusOr<std::string> txid = client_->Begin(absl::Seconds(10));
    if (!txid.ok()) return Fate::kAborted;  // nothing began
    *txid_out = *txid;
    ExecuteOptions with_message;
    with_message.messages.push_back(
        {kTopic, absl::StrCat("key-", worker), absl::StrCat(worker, ":", seq), {}});
    absl::StatusOr<ExecuteResult> order = orders_->Execute(
        *txid, {{"INSERT INTO orders VALUES (?1, ?2)", {int64_t{worker}, int64_t{seq}}}},
        with_message);
    absl::StatusOr<ExecuteResult> ledger =
        order.ok() ? ledger_->Execute(*txid, {{"INSERT INTO ledger VALUES (?1)", {*txid}}}) : order;
    if (abort || !order.ok() || !ledger.ok()) {
      // Presumed abort: an Abort that fails leaves the outcome to ask for.
      return client_->Abort(*txid).ok() ? Fate::kAborted : Fate::kUnknown;
    }
    absl::StatusOr<CommitResult> commit = client_->Commit(*txid);
    if (!commit.ok()) return Fate::kUnknown;
    return commit->committed ? Fate::kCommitted : Fate::kAborted;
  }

  // The coordinator's word on a txid whose outcome a client did not learn.
  Fate Settle(const std::string& txid) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      absl::StatusOr<v1::Transaction> t = client_->GetTransaction(txid);
      if (t.ok() && t->state() == v1::TX_STATE_COMMITTED) return Fate::kCommitted;
      if (t.ok() && t->state() == v1::TX_STATE_ABORTED) return Fate::kAborted;
      if (!t.ok() && (absl::IsNotFound(t.status()) || absl::IsAborted(t.status()))) {
        return Fate::kAborted;
      }
      // Still deciding (or the coordinator briefly unreachable): abort it
      // if it can still be aborted, then ask again.
      (void)client_->Abort(txid);
    }
    return Fate::kUnknown;
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<NatsServer> nats_;
  std::unique_ptr<EventCounterProcess> consumer_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<AgentClient> orders_;
  std::unique_ptr<AgentClient> ledger_;
};

TEST_F(MessagingFaultTest, EveryCommittedMessageIsAppliedOnceInKeyOrderThroughKills) {
  const int kTxns = EnvInt("TXCOORD_MESSAGING_TXNS", 600);
  const int kKills = EnvInt("TXCOORD_MESSAGING_KILLS", 12);

  absl::Mutex mu;
  std::vector<Sent> sent;
  Progress progress;
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      absl::BitGen rng;
      for (int seq = 0; !stop.load(); ++seq) {
        Sent s{w, seq};
        s.fate = RunOne(w, seq, absl::Bernoulli(rng, 0.25), &s.txid);
        {
          absl::MutexLock lock(&mu);
          sent.push_back(s);
        }
        progress.Finished();
      }
    });
  }

  // Kills land after a random number of finished transactions, not after a
  // delay; each victim comes back after a few more.
  absl::BitGen rng;
  const int spacing = std::max(2, kTxns / kKills);
  std::map<std::string, int> kills;
  for (int k = 0; k < kKills; ++k) {
    progress.AwaitAtLeast(k * spacing + absl::Uniform(rng, 0, spacing / 2));
    const int victim = k < 3 ? k : absl::Uniform(rng, 0, 3);  // each at least once
    if (victim == 0) {
      ASSERT_TRUE(cluster_->KillAgent(0).ok());
      ASSERT_TRUE(cluster_->StartAgent(0).ok());
      ++kills["relaying agent"];
    } else if (victim == 1) {
      ASSERT_TRUE(nats_->Kill9().ok());
      progress.AwaitAtLeast(progress.done() + absl::Uniform(rng, 1, 8));  // broker down a while
      ASSERT_TRUE(nats_->Restart().ok()) << nats_->LogTail();
      ++kills["nats-server"];
    } else {
      ASSERT_TRUE(consumer_->Kill9().ok());
      progress.AwaitAtLeast(progress.done() + absl::Uniform(rng, 1, 8));
      ASSERT_TRUE(consumer_->Start().ok());
      ++kills["consumer"];
    }
  }
  progress.AwaitAtLeast(kTxns);
  stop = true;
  for (std::thread& t : workers) t.join();
  ASSERT_TRUE(cluster_->CheckRunning().ok()) << cluster_->CheckRunning();

  std::map<std::string, std::set<int>> committed;  // key -> seqs
  int n_committed = 0, n_aborted = 0;
  std::set<std::pair<int, int>> committed_ids, aborted_ids;
  for (Sent& s : sent) {
    if (s.fate == Fate::kUnknown) s.fate = Settle(s.txid);
    ASSERT_NE(s.fate, Fate::kUnknown) << "txid " << s.txid << " never settled";
    if (s.fate == Fate::kCommitted) {
      ++n_committed;
      committed_ids.insert({s.worker, s.seq});
    } else {
      ++n_aborted;
      aborted_ids.insert({s.worker, s.seq});
    }
  }
  ASSERT_GT(n_committed, 0);
  ASSERT_GT(n_aborted, 0);

  // Delivery finishes by itself: poll the consumer's database until it has
  // as many events as committed transactions (or a deadline passes).
  const std::string consumer_db = consumer_->db_path();
  const absl::Time deadline = absl::Now() + absl::Seconds(90);
  int64_t events = 0;
  while (absl::Now() < deadline) {
    absl::StatusOr<int64_t> count = QueryInt64(consumer_db, "SELECT count(*) FROM events");
    events = count.ok() ? *count : 0;
    if (events >= n_committed) break;
    absl::SleepFor(absl::Milliseconds(100));  // polling observable state, not synchronising
  }

  absl::StatusOr<std::vector<Applied>> applied = ReadApplied(consumer_db);
  ASSERT_TRUE(applied.ok()) << applied.status();
  std::set<std::pair<int, int>> seen;
  std::map<std::string, int> last_seq;
  for (const Applied& a : *applied) {
    EXPECT_TRUE(seen.insert({a.worker, a.seq}).second)
        << "message " << a.worker << ":" << a.seq << " applied twice";
    EXPECT_EQ(aborted_ids.count({a.worker, a.seq}), 0u)
        << "message of aborted transaction " << a.worker << ":" << a.seq << " applied";
    EXPECT_EQ(a.key, absl::StrCat("key-", a.worker));
    auto [it, first] = last_seq.emplace(a.key, a.seq);
    if (!first) {
      EXPECT_LT(it->second, a.seq) << "key " << a.key << " applied out of commit order";
      it->second = a.seq;
    }
  }
  for (const auto& id : committed_ids) {
    EXPECT_EQ(seen.count(id), 1u) << "committed message " << id.first << ":" << id.second
                                  << " never applied";
  }
  absl::StatusOr<int64_t> dead =
      QueryInt64(consumer_db, "SELECT count(*) FROM _txcoord_consumer_dead");
  EXPECT_TRUE(dead.ok() && *dead == 0) << "dead-lettered at the consumer: " << dead.value_or(-1);
  absl::StatusOr<int64_t> pending =
      QueryInt64(cluster_->agent_db(0), "SELECT count(*) FROM _txcoord_outbox WHERE state != 1");
  EXPECT_TRUE(pending.ok() && *pending == 0)
      << "outbox not all delivered: " << pending.value_or(-1);

  std::string killed;
  for (const auto& [who, n] : kills) absl::StrAppend(&killed, who, "=", n, " ");
  std::cout << "messaging faults: " << sent.size() << " transactions (" << n_committed
            << " committed, " << n_aborted << " aborted), " << applied->size()
            << " events applied, kills: " << killed << "\n";
}

}  // namespace
}  // namespace txcoord::testing
