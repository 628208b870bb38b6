// outbox_bench: what transactional messages cost, against real daemons, a
// real nats-server and an in-process txcoord::Consumer, all in one run:
//   * the 2PC transfer (3 branches) at 16 clients without messages and with
//     one message per branch, interleaved twice: throughput of each and the
//     messages per second that went through the outbox;
//   * commit-to-consume latency (Commit answered at the client to the
//     message applied in the consumer's database) at 1 and 16 clients;
//   * the floors measured in the same run: a gRPC round trip that does no
//     work, and one JetStream publish waiting for the stream's ack.
//
//   outbox_bench                # 5 s per point
//   outbox_bench --smoke        # a few seconds in all, for CI
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/latency_stats.h"
#include "bench/proc_stats.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "client/consumer.h"
#include "harness/cluster.h"
#include "harness/jetstream.h"
#include "harness/nats_server.h"
#include "harness/temp_dir.h"

ABSL_FLAG(bool, smoke, false, "A short run (CI smoke test).");
ABSL_FLAG(double, seconds, 5.0, "Duration of each point.");

namespace txcoord::bench {
namespace {

constexpr int kAccounts = 1000;
constexpr char kStream[] = "OUTBOXBENCH";
constexpr char kDebit[] = "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2";
constexpr char kCredit[] = "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2";

// When each message was applied by the consumer, and each transaction's
// Commit answered at its client: commit-to-consume is the difference.
class Timeline final {
 public:
  void Applied(const std::string& message_id) {
    const Clock::time_point now = Clock::now();
    const std::string txid = message_id.substr(0, message_id.find('/'));
    absl::MutexLock lock(&mu_);
    applied_.emplace(txid, now);  // the first of the transaction's messages
    ++applied_count_;
  }
  void Committed(const std::string& txid) {
    const Clock::time_point now = Clock::now();
    absl::MutexLock lock(&mu_);
    committed_[txid] = now;
  }
  int64_t applied_count() {
    absl::MutexLock lock(&mu_);
    return applied_count_;
  }
  // Commit-to-consume of the transactions committed since `Reset`, once
  // all of them were applied (or `wait` passed).
  LatencyStats Latency(absl::Duration wait) {
    const absl::Time deadline = absl::Now() + wait;
    while (!AllApplied() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));  // the consumer's thread fills `applied_`
    }
    absl::MutexLock lock(&mu_);
    std::vector<Clock::duration> samples;
    for (const auto& [txid, at] : committed_) {
      auto it = applied_.find(txid);
      if (it == applied_.end()) continue;
      // Phase 2 may apply and relay before the client reads its answer.
      samples.push_back(std::max(Clock::duration::zero(), it->second - at));
    }
    return Summarize(std::move(samples));
  }
  bool AllApplied() {
    absl::MutexLock lock(&mu_);
    for (const auto& [txid, at] : committed_) {
      if (applied_.count(txid) == 0) return false;
    }
    return true;
  }
  void Reset() {
    absl::MutexLock lock(&mu_);
    committed_.clear();
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, Clock::time_point> applied_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Clock::time_point> committed_ ABSL_GUARDED_BY(mu_);
  int64_t applied_count_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Point {
  LatencyStats txn;
  double per_second = 0;
  int errors = 0;
  // CPU milliseconds per committed transaction over the window: the
  // coordinator, the three agents, nats-server, and this process (the 16
  // clients and, when running, the consumer).
  double cpu_coordinator = 0, cpu_agents = 0, cpu_broker = 0, cpu_bench = 0;
};

// Whose CPU a point counts.
struct Pids {
  pid_t coordinator = 0;
  std::vector<pid_t> agents;
  pid_t broker = 0;
};

double CpuOf(const std::vector<pid_t>& pids) {
  double total = 0;
  for (pid_t pid : pids) total += ProcessCpuSeconds(pid).value_or(0);
  return total;
}

// `clients` threads running transfers for `seconds`; with `messages`, each
// branch also publishes one message.
Point RunTransfers(const testing::Cluster& cluster, const Pids& pids, int clients, double seconds,
                   bool messages, Timeline* timeline) {
  std::vector<Clock::duration> samples;
  absl::Mutex mu;
  std::atomic<int> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Client coordinator(cluster.coordinator_address());
      std::vector<std::unique_ptr<AgentClient>> agents;
      for (int i = 0; i < cluster.agent_count(); ++i) {
        agents.push_back(std::make_unique<AgentClient>(cluster.agent_address(i)));
      }
      absl::BitGen rng;
      std::vector<Clock::duration> mine;
      while (!stop.load()) {
        const Clock::time_point start = Clock::now();
        absl::StatusOr<std::string> txid = coordinator.Begin(absl::Seconds(10));
        bool ok = txid.ok();
        for (size_t i = 0; ok && i < agents.size(); ++i) {
          ExecuteOptions options;
          if (messages) {
            options.messages.push_back(
                {"bench.transfers", absl::StrCat("client-", c), std::string(100, 'x'), {}});
          }
          const int64_t amount = i == 0 ? 2 : 1;
          ok = agents[i]
                   ->Execute(
                       *txid,
                       {{i == 0 ? kDebit : kCredit,
                         {amount, static_cast<int64_t>(absl::Uniform(rng, 1, kAccounts + 1))}}},
                       options)
                   .ok();
        }
        absl::StatusOr<CommitResult> done =
            ok ? coordinator.Commit(*txid) : absl::StatusOr<CommitResult>(absl::AbortedError(""));
        if (!done.ok() || !done->committed) {
          ++errors;
          continue;
        }
        if (messages) timeline->Committed(*txid);
        mine.push_back(Clock::now() - start);
      }
      absl::MutexLock lock(&mu);
      samples.insert(samples.end(), mine.begin(), mine.end());
    });
  }
  const double coordinator0 = CpuOf({pids.coordinator}), agents0 = CpuOf(pids.agents),
               broker0 = CpuOf({pids.broker}), self0 = SelfCpuSeconds();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // the measured window
  const double coordinator1 = CpuOf({pids.coordinator}), agents1 = CpuOf(pids.agents),
               broker1 = CpuOf({pids.broker}), self1 = SelfCpuSeconds();
  stop = true;
  for (std::thread& t : threads) t.join();
  Point point;
  point.per_second = static_cast<double>(samples.size()) / seconds;
  const double per_txn_ms = samples.empty() ? 0 : 1000.0 / static_cast<double>(samples.size());
  point.cpu_coordinator = (coordinator1 - coordinator0) * per_txn_ms;
  point.cpu_agents = (agents1 - agents0) * per_txn_ms;
  point.cpu_broker = (broker1 - broker0) * per_txn_ms;
  point.cpu_bench = (self1 - self0) * per_txn_ms;
  point.txn = Summarize(std::move(samples));
  point.errors = errors.load();
  return point;
}

// `n` sequential calls of `op`, timed.
template <typename Op>
LatencyStats Floor(int n, Op op, int* errors) {
  std::vector<Clock::duration> samples;
  for (int i = 0; i < n; ++i) {
    const Clock::time_point start = Clock::now();
    if (!op(i)) {
      ++*errors;
      continue;
    }
    samples.push_back(Clock::now() - start);
  }
  return Summarize(std::move(samples));
}

int Main() {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const double seconds = smoke ? 0.5 : absl::GetFlag(FLAGS_seconds);
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("outbox_bench");
  if (!dir.ok()) return 2;
  absl::StatusOr<std::unique_ptr<testing::NatsServer>> nats =
      testing::NatsServer::Start(dir->path() + "/nats");
  if (!nats.ok() ||
      !testing::CreateStream((*nats)->url(), {kStream, {"bench.>"}, absl::Minutes(2)}).ok()) {
    std::fprintf(stderr, "outbox_bench: nats-server: %s\n", nats.status().ToString().c_str());
    return 2;
  }
  testing::ClusterOptions options;
  options.agents = 3;
  options.cluster_id = "outboxbench";
  options.agent_flags = {"--nats_url=" + (*nats)->url()};
  absl::StatusOr<std::unique_ptr<testing::Cluster>> cluster = testing::Cluster::Start(options);
  if (!cluster.ok()) {
    std::fprintf(stderr, "outbox_bench: %s\n", cluster.status().ToString().c_str());
    return 2;
  }
  const testing::Cluster& c = **cluster;
  for (int i = 0; i < c.agent_count(); ++i) {
    absl::StatusOr<ExecuteResult> made =
        AgentClient(c.agent_address(i))
            .Execute(
                "",
                {{"CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)", {}},
                 {"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
                  "INSERT INTO accounts SELECT i, 1000000 FROM n",
                  {}}});
    if (!made.ok()) {
      std::fprintf(stderr, "outbox_bench: setup: %s\n", made.status().ToString().c_str());
      return 2;
    }
  }
  Pids pids;
  pids.coordinator = (*cluster)->coordinator()->pid();
  for (int i = 0; i < c.agent_count(); ++i) pids.agents.push_back((*cluster)->agent(i)->pid());
  pids.broker = (*nats)->pid();
  Timeline timeline;
  ConsumerOptions consumer_options;
  consumer_options.url = (*nats)->url();
  consumer_options.stream = kStream;
  consumer_options.durable = "bench";
  consumer_options.db_path = dir->path() + "/consumer.db";
  ConsumerStats stats;
  // A new Consumer resumes at the position its database holds.
  auto start_consumer = [&]() -> std::unique_ptr<Consumer> {
    absl::StatusOr<std::unique_ptr<Consumer>> consumer =
        Consumer::Create(consumer_options, [&timeline](sqlite3*, const InboundMessage& m) {
          timeline.Applied(m.id);
          return absl::OkStatus();
        });
    if (!consumer.ok()) {
      std::fprintf(stderr, "outbox_bench: consumer: %s\n", consumer.status().ToString().c_str());
      return nullptr;
    }
    (*consumer)->Start();
    return *std::move(consumer);
  };
  auto stop_consumer = [&stats](std::unique_ptr<Consumer>& consumer) {
    consumer->Stop();
    const ConsumerStats s = consumer->stats();
    stats.applied += s.applied;
    stats.duplicates += s.duplicates;
    stats.dead_lettered += s.dead_lettered;
    consumer.reset();
  };
  std::unique_ptr<Consumer> consumer = start_consumer();
  if (consumer == nullptr) return 2;

  std::printf(
      "outbox_bench: a transfer (Begin, 3 Executes at 3 agents, Commit), without and "
      "with one message per branch, %.1f s per point%s\n",
      seconds, smoke ? " (smoke)" : "");
  int errors = 0;
  const int floor_calls = smoke ? 50 : 2000;
  Client floor_client(c.coordinator_address());
  const LatencyStats grpc_floor = Floor(
      floor_calls,
      [&](int) {
        return floor_client.GetTransaction("bench.1.1").status().code() ==
               absl::StatusCode::kFailedPrecondition;
      },
      &errors);
  absl::StatusOr<std::unique_ptr<testing::TestPublisher>> publisher =
      testing::TestPublisher::Connect((*nats)->url());
  if (!publisher.ok()) return 2;
  const LatencyStats js_floor = Floor(
      floor_calls,
      [&](int i) {
        testing::OutboundTestMessage m;
        m.topic = "bench.floor";
        m.id = absl::StrCat("floor-", i);
        m.payload = std::string(100, 'x');
        return (*publisher)->Publish(m).ok();
      },
      &errors);
  std::printf("%-36s %7s %8s %8s %7s %6s  %s\n", "what", "clients", "p50_ms", "p99_ms", "per_s",
              "errors", "CPU ms/txn: coord agents broker clients+consumer");
  auto print = [](const std::string& what, int clients, const LatencyStats& s, const Point* p) {
    std::printf("%-36s %7d %8.3f %8.3f %7.0f %6d", what.c_str(), clients, s.p50_ms, s.p99_ms,
                p == nullptr ? 0 : p->per_second, p == nullptr ? 0 : p->errors);
    if (p != nullptr) {
      std::printf("  %.2f %.2f %.2f %.2f", p->cpu_coordinator, p->cpu_agents, p->cpu_broker,
                  p->cpu_bench);
    }
    std::printf("\n");
  };
  print("floor: gRPC round trip", 1, grpc_floor, nullptr);
  print("floor: JetStream publish + ack", 1, js_floor, nullptr);

  // Interleaved, so that a drift of the machine hits each alike. "relay
  // only": the consumer service is stopped meanwhile (it runs on another
  // machine, say) and drains the backlog after the point.
  std::vector<Point> plain, relay_only, with;
  double messages_per_s = 0;
  for (int round = 0; round < 2; ++round) {
    plain.push_back(RunTransfers(c, pids, 16, seconds, false, &timeline));
    stop_consumer(consumer);
    timeline.Reset();
    relay_only.push_back(RunTransfers(c, pids, 16, seconds, true, &timeline));
    consumer = start_consumer();
    if (consumer == nullptr) return 2;
    timeline.Latency(absl::Seconds(60));  // drained before the next point
    const int64_t before = timeline.applied_count();
    timeline.Reset();
    with.push_back(RunTransfers(c, pids, 16, seconds, true, &timeline));
    timeline.Latency(absl::Seconds(30));
    // Each transaction's first message is counted: x3 for all its branches.
    messages_per_s += 3.0 * static_cast<double>(timeline.applied_count() - before) / seconds / 2;
  }
  for (int round = 0; round < 2; ++round) {
    const std::string n = absl::StrCat(" (", round + 1, ")");
    print("2pc transfer, no message" + n, 16, plain[round].txn, &plain[round]);
    print("2pc, 1 msg/branch, relay only" + n, 16, relay_only[round].txn, &relay_only[round]);
    print("2pc, 1 msg/branch, consumer too" + n, 16, with[round].txn, &with[round]);
    errors += plain[round].errors + relay_only[round].errors + with[round].errors;
  }
  auto mean_tps = [](const std::vector<Point>& points) {
    return (points[0].per_second + points[1].per_second) / 2;
  };
  const double plain_tps = mean_tps(plain);
  std::printf("messages through the outbox and consumed: %.0f/s\n", messages_per_s);
  std::printf(
      "throughput with one message per branch: %.1f%% of without (relay only), "
      "%.1f%% (consumer on the same CPUs too); goal: at least 90%%\n",
      plain_tps > 0 ? 100.0 * mean_tps(relay_only) / plain_tps : 0,
      plain_tps > 0 ? 100.0 * mean_tps(with) / plain_tps : 0);
  for (int clients : {1, 16}) {
    timeline.Reset();
    const Point p = RunTransfers(c, pids, clients, seconds, true, &timeline);
    const LatencyStats latency = timeline.Latency(absl::Seconds(30));
    print("commit-to-consume latency", clients, latency, &p);
    errors += p.errors + (latency.samples == 0 ? 1 : 0);
  }
  stop_consumer(consumer);
  std::printf("consumer: %lld applied, %lld duplicates, %lld dead-lettered\n",
              static_cast<long long>(stats.applied), static_cast<long long>(stats.duplicates),
              static_cast<long long>(stats.dead_lettered));
  if (absl::Status stopped = (*cluster)->StopAll(); !stopped.ok()) {
    std::fprintf(stderr, "outbox_bench: %s\n", stopped.ToString().c_str());
    return 1;
  }
  return errors == 0 && stats.dead_lettered == 0 ? 0 : 1;
}

}  // namespace
}  // namespace txcoord::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "outbox_bench: what transactional messages cost: 2PC throughput with and without one "
      "message per branch, messages per second through the outbox, commit-to-consume latency, "
      "and the floors, in one run. Usage: outbox_bench [--smoke] [--seconds=5]");
  absl::ParseCommandLine(argc, argv);
  return txcoord::bench::Main();
}
