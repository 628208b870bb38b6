// `make demo`: txcoord end to end on one machine. Starts a coordinator and
// three agents as real processes, each agent with its own SQLite bank of
// accounts; runs concurrent transfers, each one global transaction spanning
// all three databases; then audits the database files behind the daemons'
// backs: the total balance must be unchanged and no branch left prepared.
// Exits 0 only if every check passes.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "client/consumer.h"
#include "cluster/coordinator_directory.h"
#include "cluster/registry_connection.h"
#include "common/flag_usage.h"
#include "common/sqlite_db.h"
#include "common/txid.h"
#include "harness/bank.h"
#include "harness/cluster.h"
#include "harness/etcd_server.h"
#include "harness/jetstream.h"
#include "harness/nats_server.h"
#include "harness/sqlite_inspect.h"
#include "harness/temp_dir.h"

ABSL_FLAG(int, clients, 16, "concurrent clients (threads), each running one transfer at a time");
ABSL_FLAG(int, transfers, 3000, "transfers to attempt in total");
ABSL_FLAG(double, seconds, 30, "start no new transfer after this many seconds");
ABSL_FLAG(int, accounts, 1000, "accounts per agent, each starting with --initial_balance");
ABSL_FLAG(int64_t, initial_balance, 1000, "starting balance of every account");
ABSL_FLAG(int64_t, max_amount, 1500,
          "largest transfer (amounts skew small); above --initial_balance some debits fail the "
          "balance check");
ABSL_FLAG(int, hot_accounts, 10,
          "ids 1..N get --hot_share of account picks, to provoke lock conflicts");
ABSL_FLAG(double, hot_share, 0.05, "share of account picks that go to the hot accounts");
ABSL_FLAG(absl::Duration, lock_timeout, absl::Seconds(1),
          "how long a write waits for a row lock; ends cross-agent deadlocks");
ABSL_FLAG(bool, early_prepare, false, "prepare each branch with its Execute (prepare=true)");
ABSL_FLAG(bool, events, true,
          "each committed transfer publishes an event through the outbox to a nats-server the "
          "demo starts; a consumer counts them into its own database");
ABSL_FLAG(bool, cluster, false,
          "cluster mode (docs/cluster.md): start etcd and three coordinators weighted by "
          "--weights, register everything in etcd, find coordinators and agents there by name, "
          "balance Begins by --balance, and print where they went");
ABSL_FLAG(std::vector<std::string>, weights, std::vector<std::string>({"1", "2", "3"}),
          "with --cluster: the coordinators' weights (one per coordinator, 1..1000)");
ABSL_FLAG(std::string, balance, "weighted",
          "with --cluster: how clients pick the coordinator for Begin: round_robin, random, "
          "weighted");
ABSL_FLAG(std::string, dir, "", "put data and logs here (kept) instead of a temporary directory");
ABSL_FLAG(bool, keep, false, "keep the temporary directory with data and logs");

namespace txcoord {
namespace {

using testing::Bank;
using testing::TransferOutcome;
using testing::TransferResult;

constexpr absl::Duration kPhase2Timeout = absl::Seconds(30);
constexpr absl::Duration kEventsTimeout = absl::Seconds(30);
constexpr char kEventStream[] = "BANK";
constexpr char kEventTopic[] = "bank.transfers";

// What the clients saw, merged after they finished.
struct Tally {
  int64_t by_outcome[5] = {};
  std::vector<absl::Duration> commit_calls;    // every Commit call
  std::vector<absl::Duration> committed_txns;  // Begin to COMMITTED
  std::vector<std::string> other_examples;     // a few "other" / unknown details
  std::set<std::string> committed, unknown;    // txids
  std::map<std::string, int64_t> by_owner;     // transfers per coordinator (txid's owner)

  void Add(const TransferResult& result) {
    ++by_outcome[static_cast<int>(result.outcome)];
    if (absl::StatusOr<Txid> txid = ParseTxid(result.txid); txid.ok()) ++by_owner[txid->cluster];
    if (result.outcome == TransferOutcome::kCommitted) committed.insert(result.txid);
    if (result.outcome == TransferOutcome::kUnknown) unknown.insert(result.txid);
    if (result.commit_called) commit_calls.push_back(result.commit_latency);
    if (result.outcome == TransferOutcome::kCommitted)
      committed_txns.push_back(result.total_latency);
    if ((result.outcome == TransferOutcome::kAborted ||
         result.outcome == TransferOutcome::kUnknown) &&
        other_examples.size() < 3) {
      other_examples.push_back(absl::StrCat(result.txid, ": ", result.detail));
    }
  }
  void Merge(const Tally& other) {
    for (int i = 0; i < 5; ++i) by_outcome[i] += other.by_outcome[i];
    for (const auto& [owner, n] : other.by_owner) by_owner[owner] += n;
    commit_calls.insert(commit_calls.end(), other.commit_calls.begin(), other.commit_calls.end());
    committed_txns.insert(committed_txns.end(), other.committed_txns.begin(),
                          other.committed_txns.end());
    committed.insert(other.committed.begin(), other.committed.end());
    unknown.insert(other.unknown.begin(), other.unknown.end());
    for (const std::string& example : other.other_examples) {
      if (other_examples.size() < 3) other_examples.push_back(example);
    }
  }
  int64_t count(TransferOutcome outcome) const { return by_outcome[static_cast<int>(outcome)]; }
};

// "median 4.1 ms, p99 12.0 ms (n=2400)"; nearest-rank percentiles.
std::string Percentiles(std::vector<absl::Duration> samples) {
  if (samples.empty()) return "no samples";
  std::sort(samples.begin(), samples.end());
  auto rank = [&samples](double p) {
    size_t index = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
    return samples[std::clamp<size_t>(index, 1, samples.size()) - 1];
  };
  return absl::StrFormat("median %.1f ms, p99 %.1f ms (n=%d)",
                         absl::ToDoubleMilliseconds(rank(0.5)),
                         absl::ToDoubleMilliseconds(rank(0.99)), samples.size());
}

// Runs the transfers on --clients threads until --transfers were attempted
// or --seconds passed.
Tally RunTransfers(Bank& bank, absl::Duration* elapsed) {
  const int clients = std::max(1, absl::GetFlag(FLAGS_clients));
  const int64_t transfers = absl::GetFlag(FLAGS_transfers);
  const absl::Time start = absl::Now();
  const absl::Time stop_starting = start + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  std::atomic<int64_t> next{0};
  std::vector<Tally> tallies(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      absl::BitGen rng;
      while (next.fetch_add(1) < transfers && absl::Now() < stop_starting) {
        tallies[c].Add(bank.Transfer(rng));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  *elapsed = absl::Now() - start;
  Tally total;
  for (const Tally& tally : tallies) total.Merge(tally);
  return total;
}

void PrintSummary(const Tally& tally, absl::Duration elapsed) {
  const int64_t committed = tally.count(TransferOutcome::kCommitted);
  const int64_t other = tally.count(TransferOutcome::kAborted);
  const int64_t unknown = tally.count(TransferOutcome::kUnknown);
  const int64_t aborted = tally.count(TransferOutcome::kBalanceCheck) +
                          tally.count(TransferOutcome::kLockConflict) + other;
  const int64_t attempted = committed + aborted + unknown;
  const double seconds = absl::ToDoubleSeconds(elapsed);
  std::printf("transfers attempted:  %lld\n", static_cast<long long>(attempted));
  std::printf("  committed:          %lld\n", static_cast<long long>(committed));
  std::printf("  aborted:            %lld\n", static_cast<long long>(aborted));
  std::printf("    balance check:    %lld\n",
              static_cast<long long>(tally.count(TransferOutcome::kBalanceCheck)));
  std::printf("    lock conflict:    %lld\n",
              static_cast<long long>(tally.count(TransferOutcome::kLockConflict)));
  std::printf("    other:            %lld\n", static_cast<long long>(other));
  if (unknown > 0) {
    std::printf("  outcome unknown:    %lld (Commit call failed)\n",
                static_cast<long long>(unknown));
  }
  for (const std::string& example : tally.other_examples)
    std::printf("      e.g. %s\n", example.c_str());
  std::printf("elapsed:              %.2f s\n", seconds);
  std::printf("throughput:           %.0f transfers/s, %.0f commits/s\n",
              seconds > 0 ? static_cast<double>(attempted) / seconds : 0.0,
              seconds > 0 ? static_cast<double>(committed) / seconds : 0.0);
  std::printf("commit call latency:  %s\n", Percentiles(tally.commit_calls).c_str());
  std::printf("transaction latency:  %s  [Begin to COMMITTED]\n",
              Percentiles(tally.committed_txns).c_str());
}

// Creates the accounts, runs the transfers, prints the summary and audits
// the database files. True if every check passed. The clients (and so
// their connections) end with this function, before the daemons are
// stopped: a server shutting down waits for open connections to go.
// The consumer service of the demo: counts each transfer event into its
// own database (events.db), exactly once, through txcoord::Consumer.
class EventCounter final {
 public:
  static absl::StatusOr<std::unique_ptr<EventCounter>> Start(const std::string& url,
                                                             const std::string& db_path) {
    auto counter = std::unique_ptr<EventCounter>(new EventCounter(db_path));
    ConsumerOptions options;
    options.url = url;
    options.stream = kEventStream;
    options.durable = "bank-events";
    options.db_path = db_path;
    absl::StatusOr<std::unique_ptr<Consumer>> consumer =
        Consumer::Create(options, [](sqlite3* db, const InboundMessage& m) {
          return RunWith(db,
                         "INSERT INTO transfer_events(msg_id, txid, account, amount) "
                         "VALUES (?1, ?2, ?3, ?4)",
                         {m.id, m.txid, m.key, m.payload});
        });
    if (!consumer.ok()) return consumer.status();
    counter->consumer_ = *std::move(consumer);
    counter->consumer_->Start();
    return counter;
  }
  ~EventCounter() { consumer_->Stop(); }

  ConsumerStats stats() const { return consumer_->stats(); }
  const std::string& db_path() const { return db_path_; }

 private:
  explicit EventCounter(std::string db_path) : db_path_(std::move(db_path)) {
    sqlite3* raw = nullptr;
    sqlite3_open(db_path_.c_str(), &raw);
    SqliteDb db(raw);
    (void)ExecSql(db.get(),
                  "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS transfer_events("
                  "msg_id TEXT PRIMARY KEY, txid TEXT NOT NULL, account TEXT NOT NULL, "
                  "amount INTEGER NOT NULL)");
  }
  const std::string db_path_;
  std::unique_ptr<Consumer> consumer_;
};

// Waits until every committed transfer's event went through the outbox and
// was counted, then prints the events line. True if it adds up.
bool CheckEvents(testing::Cluster& cluster, EventCounter& counter, const Tally& tally) {
  const absl::Time deadline = absl::Now() + kEventsTimeout;
  int64_t published = 0, delivered = 0, consumed = 0;
  while (true) {
    published = testing::SumQueryInt64(cluster.agent_dbs(), "SELECT count(*) FROM _txcoord_outbox")
                    .value_or(-1);
    delivered = testing::SumQueryInt64(cluster.agent_dbs(),
                                       "SELECT count(*) FROM _txcoord_outbox WHERE state = 1")
                    .value_or(-1);
    consumed =
        testing::QueryInt64(counter.db_path(), "SELECT count(*) FROM transfer_events").value_or(-1);
    if ((delivered == published && consumed >= published) || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(50));  // polling the files, nothing to wait on
  }
  int64_t from_aborted = 0;
  absl::StatusOr<std::set<std::string>> txids =
      testing::QueryStrings(counter.db_path(), "SELECT txid FROM transfer_events");
  for (const std::string& txid : txids.value_or(std::set<std::string>{})) {
    if (tally.committed.count(txid) == 0 && tally.unknown.count(txid) == 0) ++from_aborted;
  }
  const ConsumerStats stats = counter.stats();
  std::printf(
      "events published %lld, consumed %lld, duplicates suppressed %lld, from aborted "
      "transfers %lld\n",
      static_cast<long long>(published), static_cast<long long>(consumed),
      static_cast<long long>(stats.duplicates + stats.already_applied),
      static_cast<long long>(from_aborted));
  const int64_t committed = tally.count(TransferOutcome::kCommitted);
  const int64_t unknown = tally.count(TransferOutcome::kUnknown);
  const bool ok = txids.ok() && consumed == published && from_aborted == 0 &&
                  published >= committed && published <= committed + unknown &&
                  stats.dead_lettered == 0;
  if (!ok) {
    std::printf("events check:           failed (%lld delivered; consumer: %s)\n",
                static_cast<long long>(delivered), stats.last_error.c_str());
  }
  return ok;
}

// Where the Begins went, against the weights the coordinators registered.
void PrintBegins(const Tally& tally, txcoord::cluster::Discovery& discovery) {
  int64_t total = 0;
  for (const auto& [owner, n] : tally.by_owner) total += n;
  int64_t weights = 0;
  std::map<std::string, int64_t> weight_of;
  for (const txcoord::cluster::NodeRecord& node : discovery.All()) {
    if (node.role != txcoord::cluster::kCoordinatorRole) continue;
    weight_of[node.node_id] = node.weight;
    weights += node.weight;
  }
  std::printf("Begins by coordinator (%s):\n", absl::GetFlag(FLAGS_balance).c_str());
  for (const auto& [owner, n] : tally.by_owner) {
    std::printf("  %-4s %6lld  %5.1f%%  (weight %lld: %.1f%%)\n", owner.c_str(),
                static_cast<long long>(n), total > 0 ? 100.0 * n / total : 0.0,
                static_cast<long long>(weight_of[owner]),
                weights > 0 ? 100.0 * weight_of[owner] / weights : 0.0);
  }
}

bool RunBank(testing::Cluster& cluster, EventCounter* events,
             txcoord::cluster::Discovery* discovery) {
  std::unique_ptr<Client> coordinator_client;
  std::vector<std::unique_ptr<AgentClient>> agent_clients;
  std::vector<AgentClient*> agents;
  if (discovery == nullptr) {
    coordinator_client = std::make_unique<Client>(cluster.coordinator_address());
    for (int i = 0; i < cluster.agent_count(); ++i) {
      agent_clients.push_back(std::make_unique<AgentClient>(cluster.agent_address(i)));
    }
  } else {
    // Everything by name: the coordinators of service "txcoord" balanced by
    // policy, each agent by its service name.
    absl::StatusOr<txcoord::cluster::BalancePolicy> policy =
        txcoord::cluster::ParseBalancePolicy(absl::GetFlag(FLAGS_balance));
    if (!policy.ok()) {
      std::printf("--balance: %s\n", policy.status().ToString().c_str());
      return false;
    }
    coordinator_client =
        std::make_unique<Client>(std::make_shared<txcoord::cluster::RegistryCoordinatorDirectory>(
            discovery, txcoord::cluster::kDefaultCoordinatorService, *policy));
    for (int i = 0; i < cluster.agent_count(); ++i) {
      absl::StatusOr<std::vector<txcoord::cluster::NodeRecord>> found =
          discovery->Agents(cluster.agent_name(i));
      if (!found.ok()) {
        std::printf("finding agent %s: %s\n", cluster.agent_name(i).c_str(),
                    found.status().ToString().c_str());
        return false;
      }
      agent_clients.push_back(std::make_unique<AgentClient>(found->front().endpoint));
    }
  }
  for (auto& agent : agent_clients) agents.push_back(agent.get());
  Client& coordinator = *coordinator_client;
  testing::BankOptions options;
  options.accounts = absl::GetFlag(FLAGS_accounts);
  options.initial_balance = absl::GetFlag(FLAGS_initial_balance);
  options.max_amount = absl::GetFlag(FLAGS_max_amount);
  options.hot_accounts = absl::GetFlag(FLAGS_hot_accounts);
  options.hot_share = absl::GetFlag(FLAGS_hot_share);
  options.lock_timeout = absl::GetFlag(FLAGS_lock_timeout);
  options.early_prepare = absl::GetFlag(FLAGS_early_prepare);
  if (events != nullptr) options.event_topic = kEventTopic;
  Bank bank(&coordinator, agents, options);
  if (absl::Status status = bank.CreateAccounts(); !status.ok()) {
    std::printf("creating the accounts failed: %s\n", status.ToString().c_str());
    return false;
  }
  std::printf(
      "\n%d agents x %d accounts x %lld = %lld in total; %d clients, up to %d transfers or %g "
      "s%s\n\n",
      cluster.agent_count(), options.accounts, static_cast<long long>(options.initial_balance),
      static_cast<long long>(bank.TotalMoney()), absl::GetFlag(FLAGS_clients),
      absl::GetFlag(FLAGS_transfers), absl::GetFlag(FLAGS_seconds),
      options.early_prepare ? " (early prepare)" : "");
  std::fflush(stdout);

  absl::Duration elapsed;
  Tally tally = RunTransfers(bank, &elapsed);
  PrintSummary(tally, elapsed);
  if (discovery != nullptr) PrintBegins(tally, *discovery);
  std::printf("\n");

  // The audit: plain SQL on the database files, with connections of our
  // own. Commit returns before the agents apply phase 2, so first wait
  // until every branch has finished.
  bool ok = true;
  if (absl::Status status = bank.AwaitPhase2(kPhase2Timeout); !status.ok()) {
    std::printf("phase 2 finished:        no (%s)\n", status.ToString().c_str());
    ok = false;
  }
  absl::StatusOr<int64_t> total = Bank::SumBalances(cluster.agent_dbs());
  if (!total.ok()) {
    std::printf("total balance conserved: no (%s)\n", total.status().ToString().c_str());
    ok = false;
  } else {
    const bool conserved = *total == bank.TotalMoney();
    std::printf("total balance conserved: %s (%lld before, %lld after)\n", conserved ? "yes" : "no",
                static_cast<long long>(bank.TotalMoney()), static_cast<long long>(*total));
    ok = ok && conserved;
  }
  absl::StatusOr<int64_t> prepared = Bank::CountPrepared(cluster.agent_dbs());
  if (!prepared.ok()) {
    std::printf("prepared branches left: ? (%s)\n", prepared.status().ToString().c_str());
    ok = false;
  } else {
    std::printf("prepared branches left: %lld\n", static_cast<long long>(*prepared));
    ok = ok && *prepared == 0;
  }
  if (tally.count(TransferOutcome::kCommitted) == 0) {
    std::printf("committed transfers:    none\n");
    ok = false;
  }
  if (events != nullptr) ok = CheckEvents(cluster, *events, tally) && ok;
  return ok;
}

int Run() {
  // Data and logs: a temporary directory unless --dir.
  std::optional<testing::TempDir> temp;
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    absl::StatusOr<testing::TempDir> created = testing::TempDir::Create("demo");
    if (!created.ok()) {
      std::fprintf(stderr, "bank_demo: %s\n", created.status().ToString().c_str());
      return 1;
    }
    temp.emplace(*std::move(created));
    dir = temp->path();
    if (absl::GetFlag(FLAGS_keep)) temp->Keep();
  }
  // On any failure the logs are what one wants to read.
  auto fail = [&temp, &dir](const std::string& message) {
    if (temp.has_value()) temp->Keep();
    std::fprintf(stderr, "bank_demo: %s\nbank_demo: data and daemon logs kept in %s\n",
                 message.c_str(), dir.c_str());
    return 1;
  };

  // The broker of the transfer events, and the stream that keeps them.
  std::unique_ptr<testing::NatsServer> nats;
  if (absl::GetFlag(FLAGS_events)) {
    absl::StatusOr<std::unique_ptr<testing::NatsServer>> started_nats =
        testing::NatsServer::Start(dir + "/nats");
    if (!started_nats.ok()) return fail(started_nats.status().ToString());
    nats = *std::move(started_nats);
    absl::Status stream = testing::CreateStream(nats->url(), {kEventStream, {"bank.>"}});
    if (!stream.ok()) return fail(stream.ToString());
  }

  // Cluster mode: etcd first, then the daemons register in it.
  const bool cluster_mode = absl::GetFlag(FLAGS_cluster);
  std::unique_ptr<testing::EtcdServer> etcd;
  std::string registry_url;
  testing::ClusterOptions cluster_options;
  if (cluster_mode) {
    testing::EtcdServerOptions etcd_options;
    etcd_options.dir = dir + "/etcd";
    absl::StatusOr<std::unique_ptr<testing::EtcdServer>> started_etcd =
        testing::EtcdServer::Create(etcd_options);
    if (!started_etcd.ok()) return fail(started_etcd.status().ToString());
    etcd = *std::move(started_etcd);
    registry_url = "etcd://" + etcd->endpoint();
    const std::vector<std::string> weights = absl::GetFlag(FLAGS_weights);
    cluster_options.coordinators = static_cast<int>(weights.size());
    for (size_t i = 0; i < weights.size(); ++i) {
      cluster_options.coordinator_ids.push_back(absl::StrCat("c", i + 1));
      cluster_options.per_coordinator_flags.push_back(
          {"--registry=" + registry_url, "--registry_weight=" + weights[i]});
    }
    cluster_options.agent_flags.push_back("--registry=" + registry_url);
  }
  if (nats != nullptr) {
    cluster_options.agent_flags.insert(
        cluster_options.agent_flags.end(),
        {"--nats_url=" + nats->url(), absl::StrCat("--outbox_stream=", kEventStream),
         "--outbox_subjects=bank.>"});
  }
  cluster_options.agents = 3;
  cluster_options.agent_names = {"bank-a", "bank-b", "bank-c"};
  cluster_options.dir = dir;
  if (!cluster_mode) cluster_options.cluster_id = "demo";
  absl::StatusOr<std::unique_ptr<testing::Cluster>> started =
      testing::Cluster::Start(cluster_options);
  if (!started.ok()) return fail(started.status().ToString());
  testing::Cluster& cluster = **started;
  for (int i = 0; i < cluster.coordinator_count(); ++i) {
    std::printf("coordinator %-3s%s  pid %d\n", cluster.coordinator_id(i).c_str(),
                cluster.coordinator_address(i).c_str(),
                static_cast<int>(cluster.coordinator(i)->pid()));
  }
  for (int i = 0; i < cluster.agent_count(); ++i) {
    std::printf("agent %-8s %s  pid %d  %s\n", cluster.agent_name(i).c_str(),
                cluster.agent_address(i).c_str(), static_cast<int>(cluster.agent(i)->pid()),
                cluster.agent_db(i).c_str());
  }
  std::printf("data and logs  %s%s\n", dir.c_str(),
              temp.has_value() && !absl::GetFlag(FLAGS_keep)
                  ? "  (removed at exit unless a check fails)"
                  : "");

  std::unique_ptr<EventCounter> events;
  if (nats != nullptr) {
    std::printf("nats-server    %s  (JetStream stream %s; events counted into %s/events.db)\n",
                nats->url().c_str(), kEventStream, dir.c_str());
    absl::StatusOr<std::unique_ptr<EventCounter>> counter =
        EventCounter::Start(nats->url(), dir + "/events.db");
    if (!counter.ok()) return fail(counter.status().ToString());
    events = *std::move(counter);
  }
  // The demo's own view of the registry, as any client would keep it.
  std::unique_ptr<txcoord::cluster::RegistryConnection> registry;
  if (cluster_mode) {
    std::printf("etcd           %s  (registry under %s)\n", etcd->endpoint().c_str(),
                txcoord::cluster::kDefaultPrefix);
    txcoord::cluster::RegistryOptions registry_options;
    registry_options.url = registry_url;
    absl::StatusOr<std::unique_ptr<txcoord::cluster::RegistryConnection>> opened =
        txcoord::cluster::RegistryConnection::Open(registry_options);
    if (!opened.ok()) return fail(opened.status().ToString());
    registry = *std::move(opened);
    absl::StatusOr<txcoord::cluster::Discovery*> discovery = registry->StartDiscovery();
    if (!discovery.ok()) return fail(discovery.status().ToString());
    // Daemons register right after they listen: wait for all of them.
    const size_t expected = cluster.coordinator_count() + cluster.agent_count();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while ((*discovery)->All().size() < expected && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));  // polling the view
    }
    if ((*discovery)->All().size() < expected) {
      return fail(absl::StrCat((*discovery)->All().size(), " of ", expected,
                               " daemons registered in etcd"));
    }
  }
  bool ok = RunBank(cluster, events.get(), registry ? registry->discovery() : nullptr);
  registry.reset();
  events.reset();
  // A daemon that died during the run would otherwise only show up as
  // "other" aborts.
  if (absl::Status status = cluster.CheckRunning(); !status.ok()) {
    std::printf("all daemons alive:      no\n%s\n", status.ToString().c_str());
    ok = false;
  }
  const absl::Time stop_start = absl::Now();
  absl::Status stopped = cluster.StopAll();
  std::printf("clean shutdown:         %s (%.1f s)\n",
              stopped.ok() ? "yes" : stopped.ToString().c_str(),
              absl::ToDoubleSeconds(absl::Now() - stop_start));
  ok = ok && stopped.ok();
  if (nats != nullptr) ok = nats->Stop().ok() && ok;
  if (etcd != nullptr) ok = etcd->Stop().ok() && ok;
  std::fflush(stdout);
  if (!ok) return fail("a check failed");
  std::printf("all checks passed\n");
  return 0;
}

}  // namespace
}  // namespace txcoord

int main(int argc, char** argv) {
  txcoord::SetFlagUsage(
      "runs txcoord end to end: a coordinator, three agents with SQLite banks, concurrent "
      "transfers across all three, then audits the database files. Finds the daemons next to "
      "this binary's build tree, or at $TXCOORD_BIN and $TXAGENT_BIN.");
  absl::ParseCommandLine(argc, argv);
  return txcoord::Run();
}
