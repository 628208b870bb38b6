// The simulator's SQLite VFS keeps what a disk keeps: synced commits survive
// a crash, unsynced ones may not, and whatever survives is a database SQLite
// opens cleanly.
#include "sim/sim_vfs.h"

#include <sqlite3.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace txcoord::sim {
namespace {

class Db final {
 public:
  explicit Db(const std::string& path) {
    SimVfs::Install();
    EXPECT_EQ(
        sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
        SQLITE_OK);
  }
  ~Db() { sqlite3_close(db_); }
  // Runs `sql`; returns the first column of the last row ("" if none), or
  // "error: ..." on failure.
  std::string Exec(const std::string& sql) {
    std::string last;
    char* error = nullptr;
    const int rc = sqlite3_exec(
        db_, sql.c_str(),
        [](void* out, int n, char** values, char**) {
          *static_cast<std::string*>(out) = n > 0 && values[0] != nullptr ? values[0] : "";
          return 0;
        },
        &last, &error);
    if (rc != SQLITE_OK) {
      last = absl::StrCat("error: ", error == nullptr ? "?" : error);
      sqlite3_free(error);
    }
    return last;
  }

 private:
  sqlite3* db_ = nullptr;
};

constexpr char kSetup[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(id INTEGER PRIMARY KEY);";

TEST(SimVfsTest, DirOfIsEverythingBeforeTheLastSlash) {
  EXPECT_EQ(DirOf("/a/b/db"), "/a/b");
  EXPECT_EQ(DirOf("db"), "");
}

TEST(SimVfsTest, SyncedCommitSurvivesACrash) {
  SimVfs& vfs = SimVfs::Install();
  const std::string dir = "/vfs_test/synced";
  std::mt19937_64 rng(1);
  {
    auto db = std::make_unique<Db>(dir + "/db");
    EXPECT_EQ(db->Exec(kSetup), "wal");
    EXPECT_EQ(db->Exec("INSERT INTO t VALUES (1)"), "");
    vfs.Freeze(dir);
    db.reset();  // its close can no longer checkpoint or delete the WAL
  }
  EXPECT_TRUE(vfs.Exists(dir + "/db-wal"));
  vfs.Crash(dir, rng);
  Db db(dir + "/db");
  EXPECT_EQ(db.Exec("SELECT count(*) FROM t"), "1");
  EXPECT_EQ(db.Exec("PRAGMA integrity_check"), "ok");
  vfs.RemoveAll(dir);
}

TEST(SimVfsTest, WhateverPrefixSurvivesIsAConsistentPrefixOfCommits) {
  SimVfs& vfs = SimVfs::Install();
  int lost_some = 0;
  for (int seed = 1; seed <= 40; ++seed) {
    const std::string dir = absl::StrCat("/vfs_test/prefix", seed);
    std::mt19937_64 rng(seed);
    {
      Db db(dir + "/db");
      EXPECT_EQ(db.Exec(kSetup), "wal");
      EXPECT_EQ(db.Exec("PRAGMA synchronous=OFF"), "");  // nothing after this is synced
      for (int i = 1; i <= 20; ++i)
        EXPECT_EQ(db.Exec(absl::StrCat("INSERT INTO t VALUES (", i, ")")), "");
      vfs.Freeze(dir);
    }
    vfs.Crash(dir, rng);
    Db db(dir + "/db");
    EXPECT_EQ(db.Exec("PRAGMA integrity_check"), "ok") << seed;
    const int count = std::stoi(db.Exec("SELECT count(*) FROM t"));
    // Commits survive in order: the rows left are exactly 1..count.
    EXPECT_EQ(db.Exec("SELECT coalesce(max(id), 0) FROM t"), std::to_string(count)) << seed;
    lost_some += count < 20;
    vfs.RemoveAll(dir);
  }
  EXPECT_GT(lost_some, 0);
}

TEST(SimVfsTest, LaggingSyncLosesAnAcknowledgedCommit) {
  SimVfs& vfs = SimVfs::Install();
  int lost = 0;
  for (int seed = 1; seed <= 20; ++seed) {
    const std::string dir = absl::StrCat("/vfs_test/lagging", seed);
    std::mt19937_64 rng(seed);
    {
      Db db(dir + "/db");
      EXPECT_EQ(db.Exec(kSetup), "wal");
      EXPECT_EQ(db.Exec("INSERT INTO t VALUES (0)"), "");  // syncs everything before it
      vfs.SetLaggingSync(dir, true);
      EXPECT_EQ(db.Exec("INSERT INTO t VALUES (1)"), "");  // acknowledged, not durable
      vfs.Freeze(dir);
    }
    vfs.Crash(dir, rng);
    vfs.SetLaggingSync(dir, false);
    Db db(dir + "/db");
    EXPECT_EQ(db.Exec("PRAGMA integrity_check"), "ok") << seed;
    lost += db.Exec("SELECT count(*) FROM t WHERE id = 1") == "0";
    vfs.RemoveAll(dir);
  }
  EXPECT_GT(lost, 0);
}

}  // namespace
}  // namespace txcoord::sim
