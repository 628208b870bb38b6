// GroupCommit (participant/group_commit.h) on the simulator's disk.
// Contended, with a sync held open by the VFS's sync hook: a sync running
// is not enough, nor a caller it covers; a caller waiting for a later sync
// is. A delayed wait (a phase-2 answer's) is released by another caller's
// sync, syncs itself once its delay passes, and shares a failed sync's
// error; a second one meanwhile syncs for both. A read does not wait for
// read-safe commits (phase-2 applies).
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

// Long enough never to pass in a test: a wait that should end sooner
// fails it rather than hangs it.
constexpr absl::Duration kLong = absl::Seconds(60);

// A database in WAL mode on the simulator's disk, and GroupCommit on it.
class GroupCommitWaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SimVfs::Install();
    ASSERT_EQ(sqlite3_open((dir_ + "/db").c_str(), &db_), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db_,
                           "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                           " CREATE TABLE t(x)",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    ASSERT_TRUE(sync_.Attach(db_).ok());
  }
  void TearDown() override {
    EXPECT_EQ(sqlite3_close(db_), SQLITE_OK);
    SimVfs::Install().RemoveAll(dir_);
  }
  int Commit() { return sqlite3_exec(db_, "INSERT INTO t VALUES (1)", nullptr, nullptr, nullptr); }
  // A phase-2 answer's delayed wait on another thread, asleep once this
  // returns; it is to end with `expected`.
  std::thread SleepingDelayedWait(absl::StatusCode expected = absl::StatusCode::kOk) {
    std::thread waiter([this, expected] {
      const absl::Status status = sync_.WaitDurable(kLong);
      EXPECT_EQ(status.code(), expected) << status;
    });
    EXPECT_TRUE(sync_.AwaitSleepers(1, absl::Seconds(10))) << "the delayed wait synced at once";
    return waiter;
  }

  const std::string dir_ = "/group-commit-delayed";
  sqlite3* db_ = nullptr;
  participant::GroupCommit sync_;
};

TEST_F(GroupCommitWaitTest, ADelayedWaitIsReleasedByTheNextCallersSync) {
  const uint64_t syncs = sync_.syncs();
  ASSERT_EQ(Commit(), SQLITE_OK);
  std::thread phase2 = SleepingDelayedWait();
  EXPECT_EQ(sync_.syncs(), syncs);
  ASSERT_EQ(Commit(), SQLITE_OK);
  EXPECT_TRUE(sync_.WaitDurable().ok());  // a prepare's: syncs at once, for both commits
  phase2.join();
  EXPECT_EQ(sync_.syncs(), syncs + 1);
  EXPECT_EQ(sync_.delayed_shared(), 1u);
  EXPECT_EQ(sync_.delayed_own(), 0u);
}

TEST_F(GroupCommitWaitTest, ADelayedWaitNobodyCoversSyncsOnceItsDelayPasses) {
  const uint64_t syncs = sync_.syncs();
  ASSERT_EQ(Commit(), SQLITE_OK);
  const absl::Time start = absl::Now();
  EXPECT_TRUE(sync_.WaitDurable(absl::Milliseconds(20)).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
  EXPECT_EQ(sync_.syncs(), syncs + 1);
  EXPECT_EQ(sync_.delayed_own(), 1u);
  EXPECT_EQ(sync_.delayed_shared(), 0u);
  // Nothing new to cover: the next delayed wait returns at once.
  EXPECT_TRUE(sync_.WaitDurable(kLong).ok());
  EXPECT_EQ(sync_.syncs(), syncs + 1);
}

TEST_F(GroupCommitWaitTest, ADelayedWaitSharesAFailedSyncsError) {
  ASSERT_EQ(Commit(), SQLITE_OK);
  std::thread phase2 = SleepingDelayedWait(absl::StatusCode::kUnavailable);
  SimVfs::Install().Freeze(dir_);  // the next sync fails
  EXPECT_TRUE(absl::IsUnavailable(sync_.WaitDurable()));
  phase2.join();
  EXPECT_EQ(sync_.delayed_own(), 0u);
  SimVfs::Install().Thaw(dir_);
}

TEST_F(GroupCommitWaitTest, ASecondDelayedWaitSyncsForBoth) {
  const uint64_t syncs = sync_.syncs();
  ASSERT_EQ(Commit(), SQLITE_OK);
  std::thread first = SleepingDelayedWait();
  ASSERT_EQ(Commit(), SQLITE_OK);
  const absl::Time start = absl::Now();
  EXPECT_TRUE(sync_.WaitDurable(kLong).ok());
  EXPECT_LT(absl::Now() - start, kLong / 2) << "the second delayed wait slept too";
  first.join();
  EXPECT_EQ(sync_.syncs(), syncs + 1);
  EXPECT_EQ(sync_.delayed_own(), 1u);
  EXPECT_EQ(sync_.delayed_shared(), 1u);
}

TEST_F(GroupCommitWaitTest, AReadWaitsOnlyForCommitsItMayNotSeeUndurable) {
  const uint64_t syncs = sync_.syncs();
  sync_.SetReadSafe(true);  // a phase-2 apply
  ASSERT_EQ(Commit(), SQLITE_OK);
  sync_.SetReadSafe(false);
  EXPECT_TRUE(sync_.WaitReadable().ok());
  EXPECT_EQ(sync_.syncs(), syncs) << "a read waited for a read-safe commit";
  ASSERT_EQ(Commit(), SQLITE_OK);  // a local write
  EXPECT_TRUE(sync_.WaitReadable().ok());
  EXPECT_EQ(sync_.syncs(), syncs + 1);
  EXPECT_TRUE(sync_.WaitDurable().ok());  // that sync covered both
  EXPECT_EQ(sync_.syncs(), syncs + 1);
}

}  // namespace
}  // namespace txcoord::sim
