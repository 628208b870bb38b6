// The example consumer service (event_counter) killed while it consumes —
// by kill -9 at a random point, and exactly between its COMMIT and its
// acks — and started again: every event counted once, in stream order.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/binaries.h"
#include "harness/daemon_process.h"
#include "harness/sqlite_inspect.h"
#include "tests/messaging/messaging_fixture.h"

namespace txcoord::testing {
namespace {

using ::testing::ElementsAreArray;

class ConsumerFaultTest : public MessagingTest {
 protected:
  std::string db() const { return dir_->Path("counter.db"); }

  absl::StatusOr<std::unique_ptr<DaemonProcess>> StartCounter(
      std::vector<std::string> extra_args = {}) {
    absl::StatusOr<std::string> binary = EventCounterBinary();
    if (!binary.ok()) return binary.status();
    DaemonOptions options;
    options.binary = *binary;
    options.args = {"--nats_url=" + nats_->url(), std::string("--stream=") + kStream,
                    "--db=" + db(), "--batch_size=7", "--stats_interval=1s"};
    options.args.insert(options.args.end(), extra_args.begin(), extra_args.end());
    options.log_path = dir_->Path("event_counter.log");
    options.ready_log_text = "event_counter consuming EVENTS/event_counter from ";
    return DaemonProcess::Start(options);
  }

  int64_t Count(const std::string& sql) { return QueryInt64(db(), sql).value_or(-1); }

  // Every published id once, in publish order; nothing dead-lettered.
  void ExpectEachEventOnceInOrder(const std::vector<std::string>& ids) {
    EXPECT_THAT(Column(db(), "SELECT msg_id FROM events ORDER BY seq"), ElementsAreArray(ids));
    EXPECT_EQ(Count("SELECT SUM(count) FROM counters"), static_cast<int64_t>(ids.size()));
    EXPECT_EQ(Count("SELECT COUNT(*) FROM _txcoord_consumer_dead"), 0);
  }
};

TEST_F(ConsumerFaultTest, CrashBetweenCommitAndAckResumesWithoutLossOrSecondEffect) {
  std::vector<std::string> ids = PublishMany("m", 100);
  // Third batch committed, not acked: the server still holds it as pending.
  absl::StatusOr<std::unique_ptr<DaemonProcess>> counter =
      StartCounter({"--failpoints=consumer-after-commit=crash@3"});
  ASSERT_TRUE(counter.ok()) << counter.status();
  absl::StatusOr<ExitStatus> exit = (*counter)->Wait(absl::Seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status();
  ASSERT_EQ(exit->code, kFailpointExitCode) << exit->ToString() << "\n" << (*counter)->LogTail();
  ASSERT_EQ(Count("SELECT COUNT(*) FROM events"), 21);  // three batches of 7

  counter = StartCounter();
  ASSERT_TRUE(counter.ok()) << counter.status();
  ASSERT_TRUE(WaitFor([&] { return Count("SELECT COUNT(*) FROM events") == 100; }))
      << (*counter)->LogTail();
  absl::StatusOr<ExitStatus> stopped = (*counter)->Terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->Clean()) << stopped->ToString();
  ExpectEachEventOnceInOrder(ids);
}

TEST_F(ConsumerFaultTest, CrashWithAFetchedBatchUnappliedResumesInStreamOrder) {
  std::vector<std::string> ids = PublishMany("m", 100);
  // The third batch is delivered but neither applied nor acked: the server
  // would hand it out again only after ack_wait (30 s), behind later
  // messages, unless the restarted consumer starts over after its position.
  absl::StatusOr<std::unique_ptr<DaemonProcess>> counter =
      StartCounter({"--failpoints=consumer-before-apply=crash@3"});
  ASSERT_TRUE(counter.ok()) << counter.status();
  absl::StatusOr<ExitStatus> exit = (*counter)->Wait(absl::Seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status();
  ASSERT_EQ(exit->code, kFailpointExitCode) << exit->ToString() << "\n" << (*counter)->LogTail();
  ASSERT_EQ(Count("SELECT COUNT(*) FROM events"), 14);

  counter = StartCounter();
  ASSERT_TRUE(counter.ok()) << counter.status();
  ASSERT_TRUE(
      WaitFor([&] { return Count("SELECT COUNT(*) FROM events") == 100; }, absl::Seconds(20)))
      << (*counter)->LogTail();
  ASSERT_TRUE((*counter)->Terminate().ok());
  ExpectEachEventOnceInOrder(ids);
}

TEST_F(ConsumerFaultTest, Kill9MidStreamResumesWithoutLossOrSecondEffect) {
  std::vector<std::string> ids = PublishMany("m", 1500);
  absl::StatusOr<std::unique_ptr<DaemonProcess>> counter = StartCounter();
  ASSERT_TRUE(counter.ok()) << counter.status();
  ASSERT_TRUE(WaitFor([&] { return Count("SELECT COUNT(*) FROM events") > 50; }));
  ASSERT_TRUE((*counter)->Kill9().ok());
  int64_t at_kill = Count("SELECT COUNT(*) FROM events");
  ASSERT_LT(at_kill, 1500) << "too fast to be killed mid-stream";

  std::vector<std::string> more = PublishMany("n", 100);
  ids.insert(ids.end(), more.begin(), more.end());
  counter = StartCounter();
  ASSERT_TRUE(counter.ok()) << counter.status();
  ASSERT_TRUE(WaitFor([&] { return Count("SELECT COUNT(*) FROM events") == 1600; }))
      << (*counter)->LogTail();
  ASSERT_TRUE((*counter)->Terminate().ok());
  ExpectEachEventOnceInOrder(ids);
}

TEST_F(ConsumerFaultTest, SurvivesNatsServerKill9WhileConsuming) {
  std::vector<std::string> ids = PublishMany("m", 300);
  absl::StatusOr<std::unique_ptr<DaemonProcess>> counter = StartCounter();
  ASSERT_TRUE(counter.ok()) << counter.status();
  ASSERT_TRUE(WaitFor([&] { return Count("SELECT COUNT(*) FROM events") > 0; }));
  ASSERT_TRUE(nats_->Kill9().ok());
  ASSERT_TRUE(nats_->Restart().ok());
  Reconnect();
  std::vector<std::string> more = PublishMany("n", 100);
  ids.insert(ids.end(), more.begin(), more.end());
  ASSERT_TRUE(WaitFor([&] { return Count("SELECT COUNT(*) FROM events") == 400; }))
      << (*counter)->LogTail();
  EXPECT_TRUE((*counter)->Running());
  ASSERT_TRUE((*counter)->Terminate().ok());
  ExpectEachEventOnceInOrder(ids);
}

}  // namespace
}  // namespace txcoord::testing
