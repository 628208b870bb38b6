// When a restarted consumer may keep its durable JetStream consumer, and
// when it must recreate it after its database's position.
#include "client/jetstream_link.h"

#include "gtest/gtest.h"

namespace txcoord::consumer_internal {
namespace {

ConsumerOptions Options() {
  ConsumerOptions options;
  options.filter_subject = "bank.>";
  return options;
}

DurableState CaughtUp(uint64_t seq) {
  DurableState state;
  state.delivered_stream = seq;
  state.ack_floor_stream = seq;
  state.filter_subject = "bank.>";
  state.ack_explicit = true;
  state.max_deliver = -1;
  state.ack_wait = Options().ack_wait;
  state.max_ack_pending = Options().max_ack_pending;
  return state;
}

TEST(CanResumeTest, EverythingUpToThePositionDeliveredAndAckedResumes) {
  EXPECT_TRUE(CanResume(CaughtUp(10), 10, Options()));
  EXPECT_TRUE(CanResume(CaughtUp(0), 0, Options()));
}

TEST(CanResumeTest, UnackedDeliveryFromACrashedInstanceRecreates) {
  DurableState state = CaughtUp(12);
  state.ack_floor_stream = 10;
  state.ack_pending = 2;
  EXPECT_FALSE(CanResume(state, 10, Options()));
}

TEST(CanResumeTest, AckedPastThePositionRecreatesWithoutAFilter) {
  // Acked after a commit that the database lost (restored from a backup).
  ConsumerOptions unfiltered = Options();
  unfiltered.filter_subject = "";
  DurableState state = CaughtUp(12);
  state.filter_subject = "";
  EXPECT_FALSE(CanResume(state, 10, unfiltered));
}

TEST(CanResumeTest, FilteredConsumerPastThePositionOverOtherSubjectsResumes) {
  EXPECT_TRUE(CanResume(CaughtUp(12), 10, Options()));
}

TEST(CanResumeTest, BehindThePositionResumesItsRedeliveriesAreSkipped) {
  EXPECT_TRUE(CanResume(CaughtUp(8), 10, Options()));
}

TEST(CanResumeTest, OtherConfigurationRecreates) {
  DurableState state = CaughtUp(10);
  state.filter_subject = "other.>";
  EXPECT_FALSE(CanResume(state, 10, Options()));
  state = CaughtUp(10);
  state.max_deliver = 5;
  EXPECT_FALSE(CanResume(state, 10, Options()));
}

}  // namespace
}  // namespace txcoord::consumer_internal
