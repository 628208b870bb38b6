// http_bench: the same three-service transfer over HTTP/JSON and over gRPC,
// in one run against one real cluster (a coordinator and three agents of
// this build tree). For 1 and 16 clients it prints the whole transaction's
// p50 and p99 and the transfers per second on each API, and, measured in
// the same run, the floor of each: one round trip that does no work
// (GetTransaction of a txid the coordinator never issued: NOT_FOUND).
//
//   http_bench                 # 5 s per point
//   http_bench --smoke         # ~3 s in all, for CI
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/latency_stats.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "harness/cluster.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(bool, smoke, false, "A short run (CI smoke test).");
ABSL_FLAG(double, seconds, 5.0, "Duration of each point.");
ABSL_FLAG(std::vector<std::string>, clients, std::vector<std::string>({"1", "16"}),
          "Client counts to measure.");

namespace txcoord::bench {
namespace {

constexpr int kAccounts = 1000;
constexpr char kDebit[] = "UPDATE accounts SET balance = balance - ?1 WHERE id = ?2";
constexpr char kCredit[] = "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2";

// One client's connections over HTTP: keep-alive, one per daemon.
class HttpApi final {
 public:
  explicit HttpApi(const testing::Cluster& cluster)
      : coordinator_(Connect(cluster.coordinator_http_address())) {
    for (int i = 0; i < cluster.agent_count(); ++i) {
      agents_.push_back(Connect(cluster.agent_http_address(i)));
    }
  }

  // A transfer: false if any call failed (counted as an error).
  bool Transfer(absl::BitGenRef rng) {
    nlohmann::json begun;
    if (!Post(*coordinator_, "/v1/transactions", {{"timeout_ms", 10000}}, &begun)) return false;
    const std::string txid = begun["txid"];
    for (size_t i = 0; i < agents_.size(); ++i) {
      const int64_t amount = i == 0 ? -2 : 1;
      nlohmann::json body = {
          {"txid", txid},
          {"statements",
           {{{"sql", amount < 0 ? kDebit : kCredit},
             {"params", {std::abs(amount), absl::Uniform(rng, 1, kAccounts + 1)}}}}}};
      nlohmann::json answer;
      if (!Post(*agents_[i], "/v1/execute", body, &answer)) return false;
    }
    nlohmann::json outcome;
    return Post(*coordinator_, absl::StrCat("/v1/transactions/", txid, "/commit"),
                nlohmann::json::object(), &outcome) &&
           outcome["outcome"] == "COMMITTED";
  }

  bool Floor() {
    auto res = coordinator_->Get("/v1/transactions/bench.1.1");
    return res && res->status == 409;  // another coordinator's txid
  }

 private:
  static std::unique_ptr<httplib::Client> Connect(const std::string& address) {
    auto client = std::make_unique<httplib::Client>(absl::StrCat("http://", address));
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);
    client->set_read_timeout(30, 0);
    return client;
  }

  static bool Post(httplib::Client& client, const std::string& path, const nlohmann::json& body,
                   nlohmann::json* answer) {
    auto res = client.Post(path.c_str(), body.dump(), "application/json");
    if (!res || res->status != 200) return false;
    *answer = nlohmann::json::parse(res->body, nullptr, false);
    return !answer->is_discarded();
  }

  std::unique_ptr<httplib::Client> coordinator_;
  std::vector<std::unique_ptr<httplib::Client>> agents_;
};

// The same over gRPC, with the client library.
class GrpcApi final {
 public:
  explicit GrpcApi(const testing::Cluster& cluster) : coordinator_(cluster.coordinator_address()) {
    for (int i = 0; i < cluster.agent_count(); ++i) {
      agents_.push_back(std::make_unique<AgentClient>(cluster.agent_address(i)));
    }
  }

  bool Transfer(absl::BitGenRef rng) {
    absl::StatusOr<std::string> txid = coordinator_.Begin(absl::Seconds(10));
    if (!txid.ok()) return false;
    for (size_t i = 0; i < agents_.size(); ++i) {
      const int64_t amount = i == 0 ? 2 : 1;
      absl::StatusOr<SqlResult> r = agents_[i]->ExecuteOne(
          *txid, i == 0 ? kDebit : kCredit,
          {amount, static_cast<int64_t>(absl::Uniform(rng, 1, kAccounts + 1))});
      if (!r.ok()) return false;
    }
    absl::StatusOr<CommitResult> done = coordinator_.Commit(*txid);
    return done.ok() && done->committed;
  }

  bool Floor() {
    return coordinator_.GetTransaction("bench.1.1").status().code() ==
           absl::StatusCode::kFailedPrecondition;
  }

 private:
  Client coordinator_;
  std::vector<std::unique_ptr<AgentClient>> agents_;
};

struct Point {
  LatencyStats latency;
  double per_second = 0;
  int errors = 0;
};

// `clients` threads each with its own Api, for `seconds`.
template <typename Api, typename Op>
Point Run(const testing::Cluster& cluster, int clients, double seconds, Op op) {
  std::vector<Clock::duration> samples;
  absl::Mutex mu;
  std::atomic<int> errors{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      Api api(cluster);
      absl::BitGen rng;
      std::vector<Clock::duration> mine;
      while (!stop.load()) {
        const Clock::time_point start = Clock::now();
        if (!op(api, rng)) {
          ++errors;
          continue;
        }
        mine.push_back(Clock::now() - start);
      }
      absl::MutexLock lock(&mu);
      samples.insert(samples.end(), mine.begin(), mine.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // the measured window
  stop = true;
  for (std::thread& t : threads) t.join();
  Point point;
  point.per_second = static_cast<double>(samples.size()) / seconds;
  point.latency = Summarize(std::move(samples));
  point.errors = errors.load();
  return point;
}

void Print(const char* what, const char* api, int clients, const Point& p) {
  std::printf("%-10s %-5s %7d %10.3f %10.3f %10.0f %7d\n", what, api, clients, p.latency.p50_ms,
              p.latency.p99_ms, p.per_second, p.errors);
}

int Main() {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const double seconds = smoke ? 0.4 : absl::GetFlag(FLAGS_seconds);
  testing::ClusterOptions options;
  options.agents = 3;
  options.cluster_id = "httpbench";
  options.http = true;
  absl::StatusOr<std::unique_ptr<testing::Cluster>> cluster = testing::Cluster::Start(options);
  if (!cluster.ok()) {
    std::fprintf(stderr, "http_bench: %s\n", cluster.status().ToString().c_str());
    return 2;
  }
  for (int i = 0; i < (*cluster)->agent_count(); ++i) {
    AgentClient agent((*cluster)->agent_address(i));
    std::vector<SqlStatement> setup = {
        {"CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)", {}},
        {"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
         "INSERT INTO accounts SELECT i, 1000000 FROM n",
         {}}};
    absl::StatusOr<ExecuteResult> made = agent.Execute("", setup);
    if (!made.ok()) {
      std::fprintf(stderr, "http_bench: setup: %s\n", made.status().ToString().c_str());
      return 2;
    }
  }
  std::printf(
      "http_bench: a transfer (Begin, 3 Executes at 3 agents, Commit) over HTTP/JSON "
      "and over gRPC, %.1f s per point%s\n",
      seconds, smoke ? " (smoke)" : "");
  std::printf("%-10s %-5s %7s %10s %10s %10s %7s\n", "what", "api", "clients", "p50_ms", "p99_ms",
              "per_s", "errors");
  const testing::Cluster& c = **cluster;
  int failures = 0;
  const auto floor_http =
      Run<HttpApi>(c, 1, seconds, [](HttpApi& a, absl::BitGenRef) { return a.Floor(); });
  const auto floor_grpc =
      Run<GrpcApi>(c, 1, seconds, [](GrpcApi& a, absl::BitGenRef) { return a.Floor(); });
  Print("floor", "http", 1, floor_http);
  Print("floor", "grpc", 1, floor_grpc);
  failures += floor_http.errors + floor_grpc.errors;
  for (const std::string& text : absl::GetFlag(FLAGS_clients)) {
    int clients = 0;
    if (!absl::SimpleAtoi(text, &clients) || clients <= 0) continue;
    const Point http = Run<HttpApi>(
        c, clients, seconds, [](HttpApi& a, absl::BitGenRef rng) { return a.Transfer(rng); });
    const Point grpc = Run<GrpcApi>(
        c, clients, seconds, [](GrpcApi& a, absl::BitGenRef rng) { return a.Transfer(rng); });
    Print("transfer", "http", clients, http);
    Print("transfer", "grpc", clients, grpc);
    std::printf("%-10s http/grpc at %d: p50 %.2fx, throughput %.2fx\n", "ratio", clients,
                grpc.latency.p50_ms > 0 ? http.latency.p50_ms / grpc.latency.p50_ms : 0,
                grpc.per_second > 0 ? http.per_second / grpc.per_second : 0);
    failures += (http.latency.samples == 0) + (grpc.latency.samples == 0);
  }
  if (absl::Status stopped = (*cluster)->StopAll(); !stopped.ok()) {
    std::fprintf(stderr, "http_bench: %s\n", stopped.ToString().c_str());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace txcoord::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "http_bench: one transfer over HTTP/JSON and over gRPC against the same cluster, with "
      "each API's floor. Usage: http_bench [--smoke] [--seconds=5] [--clients=1,16]");
  absl::ParseCommandLine(argc, argv);
  return txcoord::bench::Main();
}
