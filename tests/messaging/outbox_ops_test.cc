// The outbox as operators see it, against real daemons and a real
// nats-server: with the broker down, commits go on and the backlog shows in
// the metrics and in `txctl outbox list`; delivery resumes by itself when
// the broker returns, every message applied once. Messages the stream
// refuses are dead-lettered, shown, retried and purged with txctl; bad
// messages are refused over gRPC and HTTP and change nothing.
#include <nats/nats.h>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/agent_client.h"
#include "client/consumer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/cluster.h"
#include "harness/jetstream.h"
#include "harness/nats_server.h"
#include "harness/sqlite_inspect.h"
#include "httplib.h"
#include "tests/operators/json_lite.h"
#include "tests/operators/txctl_runner.h"
#include "tests/ops/scrape.h"

namespace txcoord::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

constexpr char kStream[] = "OPS";

class OutboxOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = [] {
      ClusterOptions options;
      options.agents = 1;
      options.agent_names = {"orders"};
      options.http = true;
      return Cluster::Start(options);
    }();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    absl::StatusOr<std::unique_ptr<NatsServer>> nats = NatsServer::Start(cluster_->dir() + "/nats");
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    ASSERT_TRUE(CreateStream(nats_->url(), {kStream, {"ops.>"}}).ok());
    cluster_->SetAgentExtraFlags(
        0, {"--nats_url=" + nats_->url(), "--metrics_listen=127.0.0.1:0", "--outbox_max_attempts=2",
            "--outbox_max_backoff=100ms", "--outbox_publish_timeout=500ms"});
    ASSERT_TRUE(cluster_->RestartAgent(0).ok());
    agent_ = std::make_unique<AgentClient>(cluster_->agent_address(0));
    ASSERT_TRUE(agent_->Execute("", {{"CREATE TABLE t(id INTEGER PRIMARY KEY)", {}}}).ok());
  }

  // Messages applied in the consumer's database (a Consumer of its own).
  void StartConsumer() {
    ConsumerOptions options;
    options.url = nats_->url();
    options.stream = kStream;
    options.durable = "ops";
    options.db_path = cluster_->dir() + "/consumer.db";
    absl::StatusOr<std::unique_ptr<Consumer>> consumer =
        Consumer::Create(options, [](sqlite3*, const InboundMessage&) { return absl::OkStatus(); });
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    consumer_ = *std::move(consumer);
    consumer_->Start();
  }

  JsonValue OutboxList(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"outbox", "list", "--agent=" + cluster_->agent_address(0),
                                     "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    TxctlResult r = RunTxctl(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    absl::StatusOr<JsonValue> doc = ParseJson(r.out);
    EXPECT_TRUE(doc.ok()) << r;
    return doc.value_or(JsonValue{});
  }

  double Number(const JsonValue& doc, const char* key) {
    const JsonValue* v = doc.Get(key);
    return v == nullptr ? -1 : v->number;
  }

  std::optional<double> Metric(const std::string& series) {
    absl::StatusOr<std::string> address = MetricsAddressFromLog(cluster_->agent_log(0));
    if (!address.ok()) return std::nullopt;
    absl::StatusOr<Scrape> page = ScrapeMetrics(*address);
    if (!page.ok()) return std::nullopt;
    return page->Value(series);
  }

  // Polls `done` (observable state, no sleeps as synchronisation) for up to
  // 30 s.
  template <typename Done>
  bool Eventually(Done done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return done();
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<NatsServer> nats_;
  std::unique_ptr<AgentClient> agent_;
  std::unique_ptr<Consumer> consumer_;
};

TEST_F(OutboxOpsTest, BrokerDownCommitsGoOnBacklogShowsAndDeliveryResumesByItself) {
  StartConsumer();
  ASSERT_TRUE(nats_->Kill9().ok());
  constexpr int kMessages = 40;
  for (int i = 0; i < kMessages; ++i) {
    ExecuteOptions options;
    options.messages.push_back({"ops.orders", absl::StrCat("k", i % 4), absl::StrCat(i), {}});
    absl::StatusOr<ExecuteResult> r =
        agent_->Execute("", {{"INSERT INTO t VALUES (?1)", {int64_t{i}}}}, options);
    ASSERT_TRUE(r.ok()) << "commit " << i << " with the broker down: " << r.status();
  }
  const JsonValue backlog = OutboxList();
  EXPECT_EQ(Number(backlog, "pending"), kMessages);
  EXPECT_EQ(Number(backlog, "dead"), 0);
  EXPECT_GE(Number(backlog, "oldest_pending_age_ms"), 0);
  EXPECT_EQ(backlog.Get("messages")->size(), static_cast<size_t>(kMessages));
  EXPECT_THAT(Metric("txagent_outbox_pending"), Optional(double{kMessages}));
  // The relay says why, once it tried.
  std::string relay_state;
  EXPECT_TRUE(Eventually([&] {
    TxctlResult r = RunTxctl({"outbox", "list", "--agent=" + cluster_->agent_address(0)});
    relay_state = r.out + r.err;
    return absl::StrContains(relay_state, "broker unreachable");
  })) << relay_state;
  EXPECT_TRUE(Eventually([&] { return Metric("txagent_outbox_relay_active") == 0.0; }));

  ASSERT_TRUE(nats_->Restart().ok()) << nats_->LogTail();
  EXPECT_TRUE(Eventually([&] { return consumer_->stats().applied == kMessages; }))
      << "applied " << consumer_->stats().applied;
  EXPECT_TRUE(Eventually([&] { return Metric("txagent_outbox_pending") == 0.0; }));
  const JsonValue after = OutboxList();
  EXPECT_EQ(Number(after, "pending"), 0);
  EXPECT_EQ(Number(after, "delivered"), kMessages);
  EXPECT_THAT(Metric("txagent_outbox_delivered_total"), Optional(double{kMessages}));
  const ConsumerStats stats = consumer_->stats();
  EXPECT_EQ(stats.applied, kMessages);  // in effect: none lost, none twice
  EXPECT_EQ(stats.dead_lettered, 0);
}

TEST_F(OutboxOpsTest, MessagesWithoutAStreamWaitAndCanBeRetriedAndPurged) {
  // No stream captures "other.*": the stream never answers, no attempt is
  // used up, the message waits with its reason.
  ExecuteOptions options;
  options.messages.push_back({"other.orders", "", "x", {}});
  ASSERT_TRUE(agent_->Execute("", {{"INSERT INTO t VALUES (1)", {}}}, options).ok());
  std::string id;
  EXPECT_TRUE(Eventually([&] {
    const JsonValue list = OutboxList({"--state=pending"});
    const JsonValue* messages = list.Get("messages");
    if (messages == nullptr || messages->size() != 1) return false;
    id = messages->at(0).Get("id")->str;
    return absl::StrContains(messages->at(0).Get("last_error")->str, "no JetStream stream");
  }));
  TxctlResult shown = RunTxctl({"outbox", "show", id, "--agent=" + cluster_->agent_address(0)});
  EXPECT_EQ(shown.exit_code, 0) << shown;
  EXPECT_THAT(shown.out, HasSubstr("other.orders"));
  EXPECT_THAT(shown.out, HasSubstr("no JetStream stream captures this subject"));
  EXPECT_EQ(RunTxctl({"outbox", "show", "nope", "--agent=" + cluster_->agent_address(0)}).exit_code,
            2);
  // Pending messages are never purged.
  TxctlResult purge_pending =
      RunTxctl({"outbox", "purge", "--agent=" + cluster_->agent_address(0)});
  EXPECT_EQ(purge_pending.exit_code, 1) << purge_pending;
  // Once a stream captures it, the waiting message goes out by itself.
  ASSERT_TRUE(CreateStream(nats_->url(), {"OTHER", {"other.>"}}).ok());
  EXPECT_TRUE(Eventually([&] { return Number(OutboxList(), "delivered") == 1; }));
  TxctlResult purged = RunTxctl(
      {"outbox", "purge", "--delivered", "--json", "--agent=" + cluster_->agent_address(0)});
  EXPECT_EQ(purged.exit_code, 0) << purged;
  EXPECT_THAT(purged.out, HasSubstr("\"affected\":1"));
  EXPECT_EQ(Number(OutboxList(), "delivered"), 0);
}

// Makes or changes the stream "BIG" (subjects big.>) so that it takes
// messages of at most `max_bytes`: JetStream refuses larger ones itself.
absl::Status SetMaxMessageSize(const std::string& url, int32_t max_bytes, bool create) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  natsStatus s = natsConnection_ConnectTo(&nc, url.c_str());
  if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, nullptr);
  if (s == NATS_OK) {
    const char* subjects[] = {"big.>"};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = "BIG";
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.MaxMsgSize = max_bytes;
    jsStreamInfo* info = nullptr;
    s = create ? js_AddStream(&info, js, &config, nullptr, nullptr)
               : js_UpdateStream(&info, js, &config, nullptr, nullptr);
    if (info != nullptr) jsStreamInfo_Destroy(info);
  }
  if (js != nullptr) jsCtx_Destroy(js);
  if (nc != nullptr) natsConnection_Destroy(nc);
  if (s == NATS_OK) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("stream BIG: ", natsStatus_GetText(s)));
}

TEST_F(OutboxOpsTest, RefusedMessagesAreDeadLetteredKeptAndRetriedWithTxctl) {
  ASSERT_TRUE(SetMaxMessageSize(nats_->url(), 300, /*create=*/true).ok());
  // Same key: the dead one must stop holding back the next.
  ExecuteOptions options;
  options.messages.push_back({"big.orders", "k", std::string(1000, 'x'), {}});
  options.messages.push_back({"big.orders", "k", "small", {}});
  absl::StatusOr<ExecuteResult> r =
      agent_->Execute("", {{"INSERT INTO t VALUES (1)", {}}}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string big = r->message_ids[0];
  // --outbox_max_attempts=2: refused twice, then dead; the next one goes.
  EXPECT_TRUE(Eventually([&] {
    const JsonValue list = OutboxList();
    return Number(list, "dead") == 1 && Number(list, "delivered") == 1;
  }));
  EXPECT_TRUE(Eventually([&] { return Metric("txagent_outbox_dead") == 1.0; }));
  EXPECT_THAT(Metric("txagent_outbox_dead_lettered_total"), Optional(1.0));
  TxctlResult shown = RunTxctl({"outbox", "show", big, "--agent=" + cluster_->agent_address(0)});
  EXPECT_EQ(shown.exit_code, 0) << shown;
  EXPECT_THAT(shown.out, HasSubstr("dead, 2 attempt(s)"));
  EXPECT_THAT(shown.out, HasSubstr("refused by JetStream"));

  // The operator fixes the stream, then sends the dead message again.
  ASSERT_TRUE(SetMaxMessageSize(nats_->url(), -1, /*create=*/false).ok());
  TxctlResult retried =
      RunTxctl({"outbox", "retry", "--all-dead", "--agent=" + cluster_->agent_address(0)});
  EXPECT_EQ(retried.exit_code, 0) << retried;
  EXPECT_THAT(retried.out, HasSubstr("1 message(s) pending again"));
  EXPECT_TRUE(Eventually([&] {
    const JsonValue list = OutboxList();
    return Number(list, "dead") == 0 && Number(list, "delivered") == 2;
  }));
}

TEST_F(OutboxOpsTest, BadMessagesAreRefusedOverGrpcAndHttpAndChangeNothing) {
  const std::vector<Message> bad = {
      {"", "", "p", {}},          {"ops.*", "", "p", {}},
      {"ops..x", "", "p", {}},    {"ops.x", "", std::string((512 << 10) + 1, 'x'), {}},
      {"ops.x", "\xff", "p", {}}, {"ops.x", "", "p", {{"Nats-Msg-Id", "forged"}}},
  };
  for (const Message& m : bad) {
    ExecuteOptions options;
    options.messages = {m};
    absl::StatusOr<ExecuteResult> r =
        agent_->Execute("", {{"INSERT INTO t VALUES (7)", {}}}, options);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << m.topic;
    EXPECT_EQ(agent_->Publish("", {m}).status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(agent_->Publish("", std::vector<Message>(1025, {"ops.x", "", "p", {}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  httplib::Client http(absl::StrCat("http://", cluster_->agent_http_address(0)));
  httplib::Result reply = http.Post(
      "/v1/publish", R"({"messages":[{"topic":"ops.>","payload":"x"}]})", "application/json");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400) << reply->body;
  EXPECT_THAT(reply->body, HasSubstr("messages[0].topic"));
  EXPECT_EQ(QueryInt64(cluster_->agent_db(0), "SELECT count(*) FROM t").value_or(-1), 0);
  EXPECT_EQ(QueryInt64(cluster_->agent_db(0), "SELECT count(*) FROM _txcoord_outbox").value_or(-1),
            0);
}

}  // namespace
}  // namespace txcoord::testing
