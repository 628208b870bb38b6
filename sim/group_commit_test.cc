// GroupCommit::Contended (participant/group_commit.h) on the simulator's
// disk, with a sync held open by the VFS's sync hook: a sync running is not
// enough, nor a caller it covers; a caller waiting for a later sync is.
#include "participant/group_commit.h"

#include <sqlite3.h>

#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sim/sim_vfs.h"

namespace txcoord::sim {
namespace {

TEST(GroupCommitTest, ContendedOnlyWhileACallerTheRunningSyncMissesSleeps) {
  SimVfs& vfs = SimVfs::Install();
  const std::string dir = "/group-commit-contended";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir + "/db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         " CREATE TABLE t(x)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  participant::GroupCommit sync;
  ASSERT_TRUE(sync.Attach(db).ok());
  const auto commit = [db] {
    return sqlite3_exec(db, "INSERT INTO t VALUES (1)", nullptr, nullptr, nullptr);
  };

  // Every sync of the log from now on waits until released.
  absl::Mutex mu;
  bool entered = false;
  bool released = false;
  vfs.SetSyncHook([&](const std::string& path) {
    if (!absl::EndsWith(path, "-wal")) return;
    absl::MutexLock lock(&mu);
    entered = true;
    mu.Await(absl::Condition(&released));
  });

  ASSERT_EQ(commit(), SQLITE_OK);
  std::thread leader([&] { EXPECT_TRUE(sync.WaitDurable().ok()); });
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&entered));
  }
  EXPECT_FALSE(sync.Contended()) << "a sync runs, and nobody waits";

  std::thread covered([&] { EXPECT_TRUE(sync.WaitDurable().ok()); });
  ASSERT_TRUE(sync.AwaitSleepers(1, absl::Seconds(10)));
  EXPECT_FALSE(sync.Contended()) << "the only sleeper is covered by the running sync";

  ASSERT_EQ(commit(), SQLITE_OK);
  std::thread later([&] { EXPECT_TRUE(sync.WaitDurable().ok()); });
  ASSERT_TRUE(sync.AwaitSleepers(2, absl::Seconds(10)));
  EXPECT_TRUE(sync.Contended()) << "a sleeper waits for a commit the running sync misses";

  {
    absl::MutexLock lock(&mu);
    released = true;
  }
  leader.join();
  covered.join();
  later.join();
  EXPECT_FALSE(sync.Contended());
  EXPECT_EQ(sync.syncs(), 2u);  // the held one, then one for the later commit
  vfs.SetSyncHook(nullptr);
  EXPECT_EQ(sqlite3_close(db), SQLITE_OK);
  vfs.RemoveAll(dir);
}

}  // namespace
}  // namespace txcoord::sim
