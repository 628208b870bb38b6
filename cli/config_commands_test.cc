#include "cli/config_commands.h"

#include <string>
#include <vector>

#include "cli/exit_codes.h"
#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "/txcoord/config/orders/lock_timeout";

class ConfigCommandsTest : public ::testing::Test {
 protected:
  using Command = int (*)(const Invocation&, cluster::Etcd*);

  // Runs `command` with `args`, capturing what it prints.
  int Run(Command command, std::vector<std::string> args, bool json = false) {
    Invocation invocation;
    invocation.args = std::move(args);
    invocation.json = json;
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const int code = command(invocation, &etcd_);
    out_ = ::testing::internal::GetCapturedStdout();
    err_ = ::testing::internal::GetCapturedStderr();
    return code;
  }

  FakeScheduler scheduler_;
  cluster::MemoryEtcd etcd_{&scheduler_};
  std::string out_, err_;
};

TEST_F(ConfigCommandsTest, SetValidatesWritesTheCanonicalFormAndPrintsOldAndNew) {
  ASSERT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "0.3s"}), kExitOk) << err_;
  EXPECT_THAT(out_, HasSubstr("orders lock_timeout: unset (--lock_timeout flag) -> 300ms"));
  EXPECT_EQ(etcd_.Get(kKey)->kvs.at(0).value, "300ms");
  ASSERT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "2s"}), kExitOk) << err_;
  EXPECT_THAT(out_, HasSubstr("orders lock_timeout: 300ms -> 2s (etcd revision 3)"));
}

TEST_F(ConfigCommandsTest, SetRefusesAnInvalidValueAsAUsageErrorAndWritesNothing) {
  ASSERT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "2s"}), kExitOk);
  const int64_t revision = etcd_.revision();
  EXPECT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "banana"}), kExitUsage);
  EXPECT_THAT(err_, HasSubstr("INVALID_ARGUMENT: invalid lock_timeout \"banana\""));
  EXPECT_THAT(err_, HasSubstr("allowed 10ms..1m"));
  EXPECT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "5m"}), kExitUsage);
  EXPECT_EQ(Run(ConfigSet, {"orders", "lock_timeuot", "1s"}), kExitUsage);
  EXPECT_THAT(err_, HasSubstr("known: lock_timeout, max_statement_time"));
  EXPECT_EQ(Run(ConfigSet, {"a/b", "lock_timeout", "1s"}), kExitUsage);
  EXPECT_EQ(etcd_.revision(), revision);
  EXPECT_EQ(etcd_.Get(kKey)->kvs.at(0).value, "2s");
}

TEST_F(ConfigCommandsTest, SetRefusalInJsonCarriesTheError) {
  EXPECT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "banana"}, /*json=*/true), kExitUsage);
  EXPECT_THAT(out_, HasSubstr("\"code\":\"INVALID_ARGUMENT\""));
  EXPECT_THAT(out_, HasSubstr("\"exit_code\":1"));
}

TEST_F(ConfigCommandsTest, GetShowsTheValueOrSaysTheFlagApplies) {
  EXPECT_EQ(Run(ConfigGet, {"orders", "lock_timeout"}), kExitNotFound);
  EXPECT_THAT(out_, HasSubstr("not set in etcd; its daemons use their --lock_timeout flag"));
  ASSERT_TRUE(etcd_.Put(kKey, "banana").ok());
  EXPECT_EQ(Run(ConfigGet, {"orders", "lock_timeout"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("orders lock_timeout = banana (etcd revision 2)"));
  EXPECT_THAT(out_, HasSubstr("IGNORED by the daemons: invalid lock_timeout"));
  EXPECT_EQ(Run(ConfigGet, {"orders", "lock_timeout"}, /*json=*/true), kExitOk);
  EXPECT_THAT(out_, HasSubstr("\"value\":\"banana\""));
  EXPECT_THAT(out_, HasSubstr("\"valid\":false"));
}

TEST_F(ConfigCommandsTest, ListShowsEveryServiceOrOneAndFlagsInvalidValues) {
  ASSERT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "2s"}), kExitOk);
  ASSERT_EQ(Run(ConfigSet, {"txcoord", "prepare_timeout", "3s"}), kExitOk);
  ASSERT_TRUE(etcd_.Put("/txcoord/config/orders/outbox_max_attempts", "many").ok());
  ASSERT_EQ(Run(ConfigList, {}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("orders   lock_timeout"));
  EXPECT_THAT(out_, HasSubstr("txcoord  prepare_timeout"));
  EXPECT_THAT(out_, HasSubstr("IGNORED by the daemons: invalid outbox_max_attempts \"many\""));
  EXPECT_THAT(out_, HasSubstr("3 setting(s) under /txcoord/config/"));
  ASSERT_EQ(Run(ConfigList, {"orders"}, /*json=*/true), kExitOk);
  EXPECT_THAT(out_, HasSubstr("\"name\":\"lock_timeout\",\"value\":\"2s\""));
  EXPECT_THAT(out_, Not(HasSubstr("prepare_timeout")));
}

TEST_F(ConfigCommandsTest, UnsetDeletesAndSaysTheFlagAppliesAgain) {
  ASSERT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "2s"}), kExitOk);
  ASSERT_EQ(Run(ConfigUnset, {"orders", "lock_timeout"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("orders lock_timeout: 2s -> unset"));
  EXPECT_TRUE(etcd_.Get(kKey)->kvs.empty());
  ASSERT_EQ(Run(ConfigUnset, {"orders", "lock_timeout"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("was not set"));
}

TEST_F(ConfigCommandsTest, HistoryWalksBackThroughRevisions) {
  ASSERT_TRUE(etcd_.Put(kKey, "1s").ok());      // 2
  ASSERT_TRUE(etcd_.Put("/other", "x").ok());   // 3
  ASSERT_TRUE(etcd_.Put(kKey, "banana").ok());  // 4
  ASSERT_TRUE(etcd_.Put(kKey, "300ms").ok());   // 5
  ASSERT_EQ(Run(ConfigHistory, {"orders", "lock_timeout"}), kExitOk) << err_;
  const size_t at5 = out_.find("5         300ms\n");
  const size_t at4 = out_.find("4         banana  IGNORED by the daemons");
  const size_t at2 = out_.find("2         1s");
  ASSERT_NE(at5, std::string::npos) << out_;
  ASSERT_NE(at4, std::string::npos) << out_;
  ASSERT_NE(at2, std::string::npos) << out_;
  EXPECT_LT(at5, at4);
  EXPECT_LT(at4, at2);
  EXPECT_THAT(out_, HasSubstr("first set at revision 2"));
}

TEST_F(ConfigCommandsTest, HistoryStopsAtACompactedRevisionAndSaysSo) {
  ASSERT_TRUE(etcd_.Put(kKey, "1s").ok());  // 2
  ASSERT_TRUE(etcd_.Put(kKey, "2s").ok());  // 3
  ASSERT_TRUE(etcd_.Put(kKey, "3s").ok());  // 4
  ASSERT_TRUE(etcd_.Compact(3).ok());
  ASSERT_EQ(Run(ConfigHistory, {"orders", "lock_timeout"}, /*json=*/true), kExitOk) << err_;
  EXPECT_THAT(out_, HasSubstr("\"value\":\"3s\""));
  EXPECT_THAT(out_, HasSubstr("\"value\":\"2s\""));
  EXPECT_THAT(out_, Not(HasSubstr("\"value\":\"1s\"")));
  EXPECT_THAT(out_, HasSubstr("\"compacted\":true"));
  EXPECT_THAT(out_, HasSubstr("compacted away by etcd (before revision 3)"));
}

TEST_F(ConfigCommandsTest, UnreachableEtcdIsExitFourNamingIt) {
  etcd_.SetAvailable(false);
  EXPECT_EQ(Run(ConfigGet, {"orders", "lock_timeout"}), kExitUnreachable);
  EXPECT_THAT(err_, HasSubstr("etcd in memory"));
  EXPECT_THAT(err_, HasSubstr("--registry"));
  EXPECT_EQ(Run(ConfigSet, {"orders", "lock_timeout", "1s"}), kExitUnreachable);
}

}  // namespace
}  // namespace txcoord::cli
