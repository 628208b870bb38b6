#include "agent/serving_lock.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "harness/temp_dir.h"

namespace txcoord::participant {
namespace {

using ::testing::HasSubstr;

TEST(ServingLockTest, TheFirstTakerHoldsItAndEveryLaterOneIsRefused) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("serving_lock");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string path = ServingLockPath(dir->path() + "/svc.db");
  EXPECT_EQ(path, dir->path() + "/svc.db-agent.lock");
  // flock belongs to an open file, so a second open in this process is
  // refused as a second txagent would be.
  absl::StatusOr<bool> first = TryTakeServingLock(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<bool> again = TryTakeServingLock(path);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(*again);
  }
}

TEST(ServingLockTest, EverySpellingOfOneDatabaseNamesOneFile) {
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("serving_lock");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string real = dir->path() + "/svc.db";
  absl::StatusOr<std::string> name = DatabaseFileName(real);
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(*name, real);
  ASSERT_EQ(symlink(real.c_str(), (dir->path() + "/link.db").c_str()), 0);
  for (const std::string& spelling :
       {dir->path() + "/link.db", dir->path() + "/./sub/../svc.db", "file:" + real + "?mode=rwc"}) {
    if (spelling.find("/sub/") != std::string::npos) {
      ASSERT_EQ(mkdir((dir->path() + "/sub").c_str(), 0700), 0);
    }
    absl::StatusOr<std::string> same = DatabaseFileName(spelling);
    ASSERT_TRUE(same.ok()) << spelling << ": " << same.status();
    EXPECT_EQ(*same, real) << spelling;
  }
  EXPECT_THAT(DatabaseFileName(":memory:").status().message(), HasSubstr("is not a database file"));
  EXPECT_THAT(DatabaseFileName("").status().message(), HasSubstr("is not a database file"));
}

TEST(ServingLockTest, AFileThatCannotBeOpenedIsAnErrorNamingIt) {
  absl::StatusOr<bool> taken = TryTakeServingLock("/nonexistent-dir/svc.db-agent.lock");
  EXPECT_FALSE(taken.ok());
  EXPECT_THAT(taken.status().message(),
              HasSubstr("cannot open /nonexistent-dir/svc.db-agent.lock"));
}

}  // namespace
}  // namespace txcoord::participant
