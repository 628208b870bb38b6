// Shared set-up of the messaging suites: a fresh nats-server with one
// stream per test, a publisher speaking the relay's wire format, and plain
// SQL reads of a consumer's database.
#ifndef TXCOORD_TESTS_MESSAGING_MESSAGING_FIXTURE_H_
#define TXCOORD_TESTS_MESSAGING_MESSAGING_FIXTURE_H_

#include <sqlite3.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "harness/jetstream.h"
#include "harness/nats_server.h"
#include "harness/temp_dir.h"

namespace txcoord::testing {

inline constexpr char kStream[] = "EVENTS";
inline constexpr char kSubjects[] = "events.>";

// Polls `done` every few milliseconds until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

// The rows of a one-column query, as text; opened read-only per call so
// that it never holds a lock the consumer needs.
inline std::vector<std::string> Column(const std::string& db_path, const std::string& sql) {
  std::vector<std::string> rows;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return rows;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      rows.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

class MessagingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("messaging");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<TempDir>(std::move(*dir));
    absl::StatusOr<std::unique_ptr<NatsServer>> nats = NatsServer::Start(dir_->Path("nats"));
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = std::move(*nats);
    ASSERT_TRUE(
        CreateStream(nats_->url(), StreamSpec{kStream, {kSubjects}, duplicate_window_}).ok());
    Reconnect();
  }

  void TearDown() override {
    publisher_.reset();
    if (nats_ != nullptr) {
      if (HasFailure()) std::cerr << "---- nats-server log ends with:\n" << nats_->LogTail();
      EXPECT_TRUE(nats_->Stop().ok());
    }
  }

  void Reconnect() {
    publisher_.reset();
    absl::StatusOr<std::unique_ptr<TestPublisher>> publisher = TestPublisher::Connect(nats_->url());
    ASSERT_TRUE(publisher.ok()) << publisher.status();
    publisher_ = std::move(*publisher);
  }

  // Publishes `count` messages "<prefix>-<i>" round-robin over `keys` keys
  // (topic events.<key>); returns their ids in publish (= stream) order.
  std::vector<std::string> PublishMany(const std::string& prefix, int count, int keys = 3) {
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
      std::string key = absl::StrCat("k", i % keys);
      OutboundTestMessage message{
          absl::StrCat(prefix, "-", i), absl::StrCat("events.", key), key,
          absl::StrCat("c1.1.", i),     {{"X-Trace", "t"}},           absl::StrCat("payload ", i)};
      absl::StatusOr<PublishResult> published = publisher_->Publish(message);
      EXPECT_TRUE(published.ok()) << published.status();
      if (published.ok()) {
        EXPECT_FALSE(published->duplicate) << message.id;
      }
      ids.push_back(message.id);
    }
    return ids;
  }

  absl::Duration duplicate_window_ = absl::Minutes(2);
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<NatsServer> nats_;
  std::unique_ptr<TestPublisher> publisher_;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_MESSAGING_MESSAGING_FIXTURE_H_
