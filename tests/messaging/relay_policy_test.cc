// The relay's retry policy and retention changed while it runs (the config
// centre's outbox_max_attempts and outbox_retention): the next failure and
// the next cleanup follow the new values. Against a real nats-server.
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/outbox_relay.h"
#include "common/metrics.h"
#include "gtest/gtest.h"
#include "harness/jetstream.h"
#include "harness/nats_server.h"
#include "harness/temp_dir.h"
#include "participant/participant.h"
#include "participant/participant_test_util.h"

namespace txcoord::testing {
namespace {

using participant::ExecuteOptions;
using participant::OutboxRelay;
using participant::OutboxRelayOptions;
using participant::OutboxState;
using participant::Participant;
using participant::ParticipantOptions;
using participant::RelayPolicy;

class RelayPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("relay_policy");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(*std::move(dir));
    absl::StatusOr<std::unique_ptr<NatsServer>> nats = NatsServer::Start(dir_->path() + "/nats");
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    StreamSpec spec{"POLICY", {"policy.>"}};
    spec.max_msg_size = 300;
    ASSERT_TRUE(CreateStream(nats_->url(), spec).ok());

    ParticipantOptions options;
    options.db_path = dir_->path() + "/service.db";
    options.name = "svc";
    options.branch_idle_timeout = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<Participant>> p = Participant::Open(options, &enlister_);
    ASSERT_TRUE(p.ok()) << p.status();
    participant_ = *std::move(p);

    OutboxRelayOptions relay_options;
    relay_options.nats_url = nats_->url();
    relay_options.lock_path = options.db_path + "-relay.lock";
    relay_options.policy.max_attempts = 1000;
    relay_options.policy.max_backoff = absl::Seconds(30);
    absl::StatusOr<std::unique_ptr<OutboxRelay>> relay =
        OutboxRelay::Start(participant_.get(), relay_options, &registry_);
    ASSERT_TRUE(relay.ok()) << relay.status();
    relay_ = *std::move(relay);
    ASSERT_TRUE(Eventually([&] {
      return absl::StartsWith(relay_->state().description, "relaying");
    })) << relay_->state().description;
  }

  void TearDown() override {
    if (relay_ != nullptr) relay_->Stop();
  }

  // The id of a message committed now.
  std::string Publish(std::string payload) {
    ExecuteOptions options;
    options.messages.push_back({"policy.m", "", std::move(payload), {}});
    absl::StatusOr<participant::ExecuteResult> r =
        participant_->Execute("", {}, std::move(options));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->message_ids.at(0) : "";
  }

  // Polls observable state for up to 20 s.
  template <typename Done>
  static bool Eventually(Done done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!done() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    return done();
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<NatsServer> nats_;
  participant::testing::FakeEnlister enlister_;
  std::unique_ptr<Participant> participant_;
  MetricsRegistry registry_;
  std::unique_ptr<OutboxRelay> relay_;
};

TEST_F(RelayPolicyTest, LoweredMaxAttemptsDeadLettersARefusedMessageAtItsNextFailure) {
  RelayPolicy policy = relay_->policy();
  policy.max_attempts = 2;
  policy.max_backoff = absl::Milliseconds(200);
  relay_->SetPolicy(policy);
  EXPECT_EQ(relay_->policy().max_attempts, 2);
  const std::string id = Publish(std::string(1000, 'x'));  // over the stream's 300 bytes
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<participant::OutboxRow> row = participant_->GetOutboxMessage(id);
    return row.ok() && row->state == OutboxState::kDead;
  }));
  EXPECT_EQ(participant_->GetOutboxMessage(id)->attempts, 2);
}

TEST_F(RelayPolicyTest, ShorterRetentionDeletesDeliveredMessagesAtOnce) {
  const std::string id = Publish("small");
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<participant::OutboxRow> row = participant_->GetOutboxMessage(id);
    return row.ok() && row->state == OutboxState::kDelivered;
  }));
  EXPECT_EQ(relay_->retention(), absl::Hours(1));  // kept for an hour as things were
  relay_->SetRetention(absl::ZeroDuration());
  EXPECT_TRUE(Eventually([&] {
    return participant_->GetOutboxMessage(id).status().code() == absl::StatusCode::kNotFound;
  }));
}

}  // namespace
}  // namespace txcoord::testing
