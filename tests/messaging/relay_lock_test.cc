// One relay per database: two relays on the same SQLite file (two
// Participants in one program; two txagents never both open it, see
// agent/serving_lock.h) never both publish; the second waits as a standby
// and takes over when the first stops. Against a real nats-server.
#include <memory>
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
using participant::Participant;
using participant::ParticipantOptions;

class RelayLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TempDir> dir = TempDir::Create("relay_lock");
    ASSERT_TRUE(dir.ok());
    dir_.emplace(*std::move(dir));
    absl::StatusOr<std::unique_ptr<NatsServer>> nats = NatsServer::Start(dir_->path() + "/nats");
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
    ASSERT_TRUE(CreateStream(nats_->url(), {"LOCK", {"lock.>"}}).ok());
  }

  std::unique_ptr<Participant> OpenParticipant() {
    ParticipantOptions options;
    options.db_path = dir_->path() + "/service.db";
    options.name = "svc";
    options.branch_idle_timeout = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<Participant>> p = Participant::Open(options, &enlister_);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  }

  std::unique_ptr<OutboxRelay> StartRelay(Participant* p, MetricsRegistry* registry) {
    OutboxRelayOptions options;
    options.nats_url = nats_->url();
    options.lock_path = dir_->path() + "/service.db-relay.lock";
    absl::StatusOr<std::unique_ptr<OutboxRelay>> relay = OutboxRelay::Start(p, options, registry);
    EXPECT_TRUE(relay.ok()) << relay.status();
    return relay.ok() ? *std::move(relay) : nullptr;
  }

  void Publish(Participant* p, int n) {
    ExecuteOptions options;
    for (int i = 0; i < n; ++i) options.messages.push_back({"lock.m", "", absl::StrCat(i), {}});
    ASSERT_TRUE(p->Execute("", {}, std::move(options)).ok());
  }

  static double Delivered(const MetricsRegistry& registry) {
    const std::string text = registry.Render();
    const std::string name = "txagent_outbox_delivered_total ";
    const size_t at = text.find("\n" + name);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + 1 + name.size()));
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
};

TEST_F(RelayLockTest, ASecondRelayOnTheSameDatabaseWaitsAndTakesOverWhenTheFirstStops) {
  std::unique_ptr<Participant> a = OpenParticipant();
  std::unique_ptr<Participant> b = OpenParticipant();
  ASSERT_TRUE(a && b);
  MetricsRegistry registry_a, registry_b;
  std::unique_ptr<OutboxRelay> relay_a = StartRelay(a.get(), &registry_a);
  ASSERT_TRUE(Eventually([&] {
    return absl::StartsWith(relay_a->state().description, "relaying");
  })) << relay_a->state().description;
  std::unique_ptr<OutboxRelay> relay_b = StartRelay(b.get(), &registry_b);
  ASSERT_TRUE(Eventually([&] { return absl::StartsWith(relay_b->state().description, "standby"); }))
      << relay_b->state().description;

  Publish(a.get(), 30);
  Publish(b.get(), 30);  // committed through the other agent: same outbox
  ASSERT_TRUE(Eventually([&] { return Delivered(registry_a) == 60; })) << Delivered(registry_a);
  EXPECT_EQ(Delivered(registry_b), 0) << "the standby published";
  EXPECT_EQ(a->CountOutbox().value().delivered, 60);

  relay_a->Stop();
  Publish(b.get(), 10);
  ASSERT_TRUE(Eventually([&] { return Delivered(registry_b) == 10; })) << Delivered(registry_b);
  EXPECT_TRUE(absl::StartsWith(relay_b->state().description, "relaying"));
  EXPECT_EQ(b->CountOutbox().value().delivered, 70);
  EXPECT_EQ(b->CountOutbox().value().pending, 0);
}

}  // namespace
}  // namespace txcoord::testing
