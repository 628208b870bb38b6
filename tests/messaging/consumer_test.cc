// txcoord::Consumer in-process against a real nats-server: each message's
// effect once, in stream order per key, through republished duplicates,
// failing applies, poison messages and a killed server.
#include "client/consumer.h"

#include <atomic>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/messaging/messaging_fixture.h"

namespace txcoord::testing {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// Records every applied message in `applied(n AUTOINCREMENT, msg_id UNIQUE,
// key)`, so the table's order is the apply order; fails while `fail` says so.
class ConsumerTest : public MessagingTest {
 protected:
  ConsumerOptions Options() {
    ConsumerOptions options;
    options.url = nats_->url();
    options.stream = kStream;
    options.durable = "recorder";
    options.db_path = dir_->Path("service.db");
    options.fetch_wait = absl::Milliseconds(200);
    options.retry_delay = absl::Milliseconds(5);
    options.max_retry_delay = absl::Milliseconds(200);
    return options;
  }

  std::unique_ptr<Consumer> Start(ConsumerOptions options) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(options.db_path.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(
        sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS applied(n INTEGER PRIMARY KEY AUTOINCREMENT, "
                     "msg_id TEXT UNIQUE, key TEXT, txid TEXT, header TEXT)",
                     nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
    absl::StatusOr<std::unique_ptr<Consumer>> consumer =
        Consumer::Create(options, [this](sqlite3* db, const InboundMessage& m) -> absl::Status {
          if (fail && fail(m)) return absl::UnavailableError(absl::StrCat("refusing ", m.id));
          std::string header =
              m.headers.empty() ? "" : m.headers[0].first + "=" + m.headers[0].second;
          std::string sql = absl::StrCat("INSERT INTO applied(msg_id, key, txid, header) VALUES('",
                                         m.id, "', '", m.key, "', '", m.txid, "', '", header, "')");
          char* error = nullptr;
          if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            absl::Status status = absl::InternalError(error);
            sqlite3_free(error);
            return status;
          }
          return absl::OkStatus();
        });
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    if (!consumer.ok()) return nullptr;
    (*consumer)->Start();
    return std::move(*consumer);
  }

  std::vector<std::string> Applied(const std::string& where = "1") {
    return Column(dir_->Path("service.db"),
                  absl::StrCat("SELECT msg_id FROM applied WHERE ", where, " ORDER BY n"));
  }

  // The ids of `ids` with key `key`, in order (published round-robin).
  static std::vector<std::string> OfKey(const std::vector<std::string>& ids, int key, int keys) {
    std::vector<std::string> out;
    for (size_t i = key; i < ids.size(); i += keys) out.push_back(ids[i]);
    return out;
  }

  std::function<bool(const InboundMessage&)> fail;
};

TEST_F(ConsumerTest, AppliesEachMessageOnceInStreamOrderWithItsHeaders) {
  std::vector<std::string> ids = PublishMany("m", 60);
  std::unique_ptr<Consumer> consumer = Start(Options());
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 60; }))
      << consumer->stats().applied;
  consumer->Stop();
  EXPECT_THAT(Applied(), ElementsAreArray(ids));
  EXPECT_EQ(Column(dir_->Path("service.db"), "SELECT COUNT(*) FROM _txcoord_inbox")[0], "60");
  EXPECT_EQ(
      Column(dir_->Path("service.db"),
             "SELECT key || ' ' || txid || ' ' || header FROM applied WHERE msg_id = 'm-4'")[0],
      "k1 c1.1.4 X-Trace=t");
  EXPECT_EQ(consumer->stats().position, 60u);
  EXPECT_EQ(consumer->stats().duplicates, 0);
}

TEST_F(ConsumerTest, CleanRestartKeepsTheDurableConsumerAndResumesAfterThePosition) {
  ConsumerOptions options = Options();
  options.filter_subject = "events.k1";  // the server's view skips other subjects
  std::vector<std::string> ids = PublishMany("m", 30);
  std::unique_ptr<Consumer> consumer = Start(options);
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 10; }));
  consumer->Stop();
  consumer.reset();
  std::vector<std::string> more = PublishMany("n", 30);
  ids.insert(ids.end(), more.begin(), more.end());
  consumer = Start(options);
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 10; }));
  consumer->Stop();
  EXPECT_EQ(consumer->stats().resyncs, 0);  // nothing was left unacked
  EXPECT_EQ(consumer->stats().already_applied, 0);
  EXPECT_THAT(Applied(), ElementsAreArray(OfKey(ids, 1, 3)));
}

TEST_F(ConsumerTest, CleanRestartWithoutAFilterKeepsTheDurableConsumer) {
  std::vector<std::string> ids = PublishMany("m", 20);
  std::unique_ptr<Consumer> consumer = Start(Options());
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 20; }));
  consumer.reset();  // stops
  std::vector<std::string> more = PublishMany("n", 20);
  ids.insert(ids.end(), more.begin(), more.end());
  consumer = Start(Options());
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 20; }));
  consumer->Stop();
  EXPECT_EQ(consumer->stats().resyncs, 0);
  EXPECT_THAT(Applied(), ElementsAreArray(ids));
}

TEST_F(ConsumerTest, RepublishedDuplicateIsAppliedOnceAndCountedAsDuplicate) {
  // Dedup window short, so that a republish (a relay that crashed after
  // publishing) lands in the stream a second time under the same id.
  TearDown();
  duplicate_window_ = absl::Milliseconds(100);
  SetUp();
  std::unique_ptr<Consumer> consumer = Start(Options());
  ASSERT_NE(consumer, nullptr);
  OutboundTestMessage message{"c1.5.42/accounts/0", "events.k0", "k0", "c1.5.42", {}, "debit"};
  ASSERT_TRUE(publisher_->Publish(message).ok());
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 1; }));
  // Republish until the stream takes it as new (its dedup window has passed).
  absl::StatusOr<PublishResult> again;
  ASSERT_TRUE(WaitFor([&] {
    again = publisher_->Publish(message);
    return again.ok() && !again->duplicate;
  })) << again.status();
  ASSERT_EQ(again->stream_seq, 2u);  // a second copy is really in the stream
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().duplicates == 1; }));
  EXPECT_EQ(consumer->stats().applied, 1);
  EXPECT_EQ(consumer->stats().position, 2u);
  EXPECT_THAT(Applied(), ElementsAreArray({"c1.5.42/accounts/0"}));
}

TEST_F(ConsumerTest, FailingMessageIsRetriedAndLaterMessagesOfItsKeyWaitForIt) {
  std::atomic<int> refusals{0};
  fail = [&](const InboundMessage& m) {
    return m.id == "m-4" && m.deliveries < 3 && (++refusals, true);
  };
  std::vector<std::string> ids = PublishMany("m", 30);
  std::unique_ptr<Consumer> consumer = Start(Options());
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 30; }));
  consumer->Stop();
  EXPECT_EQ(refusals.load(), 2);
  EXPECT_EQ(consumer->stats().apply_failures, 2);
  EXPECT_GE(consumer->stats().redelivered, 2);  // m-4 twice, and what followed it
  EXPECT_EQ(consumer->stats().dead_lettered, 0);
  // Not only the key of m-4: the whole stream order holds.
  EXPECT_THAT(Applied(), ElementsAreArray(ids));
  EXPECT_THAT(Applied("key = 'k1'"), ElementsAreArray(OfKey(ids, 1, 3)));
}

TEST_F(ConsumerTest, PoisonMessageIsDeadLetteredAfterMaxDeliveries) {
  fail = [](const InboundMessage& m) { return m.id == "m-2"; };
  std::vector<std::string> ids = PublishMany("m", 6);
  ConsumerOptions options = Options();
  options.max_deliveries = 3;
  std::unique_ptr<Consumer> consumer = Start(options);
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 5; }));
  consumer->Stop();
  EXPECT_EQ(consumer->stats().dead_lettered, 1);
  EXPECT_EQ(consumer->stats().apply_failures, 2);  // the third failure dead-letters
  EXPECT_THAT(Applied(), ElementsAreArray({"m-0", "m-1", "m-3", "m-4", "m-5"}));
  EXPECT_THAT(Column(dir_->Path("service.db"),
                     "SELECT msg_id || ' ' || stream_seq || ' ' || deliveries || ' ' || topic || "
                     "' ' || error FROM _txcoord_consumer_dead"),
              ElementsAreArray({"m-2 3 3 events.k2 UNAVAILABLE: refusing m-2"}));
}

TEST_F(ConsumerTest, ConsumptionResumesByItselfAfterNatsServerKill9AndRestart) {
  std::vector<std::string> ids = PublishMany("before", 100);
  ConsumerOptions options = Options();
  options.batch_size = 5;  // so that the kill lands mid-stream
  std::unique_ptr<Consumer> consumer = Start(options);
  ASSERT_NE(consumer, nullptr);
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied > 0; }));
  ASSERT_TRUE(nats_->Kill9().ok());
  ASSERT_LT(consumer->stats().applied, 100) << "not killed mid-stream";
  // Down long enough for the consumer to notice and fail a few rounds.
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().errors > 0; })) << consumer->stats().applied;
  ASSERT_TRUE(nats_->Restart().ok());
  Reconnect();
  std::vector<std::string> after = PublishMany("after", 100);
  ids.insert(ids.end(), after.begin(), after.end());
  ASSERT_TRUE(WaitFor([&] { return consumer->stats().applied == 200; }))
      << consumer->stats().applied << " " << consumer->stats().last_error;
  consumer->Stop();
  EXPECT_THAT(Applied(), ElementsAreArray(ids));
}

TEST_F(ConsumerTest, MissingStreamIsNotFoundNamingTheStream) {
  ConsumerOptions options = Options();
  options.stream = "NO_SUCH_STREAM";
  absl::StatusOr<std::unique_ptr<Consumer>> consumer =
      Consumer::Create(options, [](sqlite3*, const InboundMessage&) { return absl::OkStatus(); });
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.status().code(), absl::StatusCode::kNotFound) << consumer.status();
  EXPECT_THAT(std::string(consumer.status().message()), HasSubstr("NO_SUCH_STREAM"));
}

TEST_F(ConsumerTest, NoServerAtTheUrlIsUnavailableAndBadUrlIsAnError) {
  ConsumerOptions options = Options();
  options.connect_timeout = absl::Seconds(1);
  auto noop = [](sqlite3*, const InboundMessage&) { return absl::OkStatus(); };
  ASSERT_TRUE(nats_->Stop().ok());
  absl::StatusOr<std::unique_ptr<Consumer>> consumer = Consumer::Create(options, noop);
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.status().code(), absl::StatusCode::kUnavailable) << consumer.status();
  EXPECT_THAT(std::string(consumer.status().message()), HasSubstr(nats_->url()));
  options.url = "nats://[not a host";
  consumer = Consumer::Create(options, noop);
  EXPECT_FALSE(consumer.ok());
  ASSERT_TRUE(nats_->Restart().ok());  // for TearDown
}

}  // namespace
}  // namespace txcoord::testing
