#include "participant/lock_keys.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "common/sqlite_db.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/changeset.h"
#include "participant/changeset_test_util.h"

namespace txcoord::participant {
namespace {

using ::testing::Contains;
using ::testing::UnorderedElementsAre;

class ParticipantLockKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::OpenInMemoryDb();
    Run("PRAGMA foreign_keys = ON;"
        "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE UNIQUE, name TEXT,"
        "  code TEXT, region TEXT, UNIQUE(code, region));"
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users,"
        "  user_code TEXT, user_region TEXT,"
        "  FOREIGN KEY(user_region, user_code) REFERENCES users(region, code));"
        "CREATE TABLE tags(name TEXT PRIMARY KEY, user_ref REFERENCES users(id)) WITHOUT ROWID;"
        "CREATE TABLE lower_names(id INTEGER PRIMARY KEY, n TEXT);"
        "CREATE UNIQUE INDEX lower_names_n ON lower_names(lower(n));"
        "INSERT INTO users VALUES (1, 'A@x.org', 'ann', 'c1', 'eu');");
    ASSERT_TRUE(schema_.Refresh(db_.get()).ok());
  }

  void Run(const std::string& sql) { ASSERT_TRUE(ExecSql(db_.get(), sql.c_str()).ok()); }

  // The changeset of `sql`, left uncommitted like a branch's.
  std::string ChangesetOf(const std::string& sql) {
    return testing::ChangesetOf(db_.get(), &schema_, sql);
  }

  // "description X" (exclusive) or "description S" (shared), for matching.
  std::vector<std::string> KeysOf(const std::string& sql) {
    absl::StatusOr<std::vector<LockKey>> keys =
        LockKeysForChangeset(db_.get(), schema_, ChangesetOf(sql));
    EXPECT_TRUE(keys.ok()) << keys.status();
    std::vector<std::string> shown;
    for (const LockKey& key : keys.value_or(std::vector<LockKey>{})) {
      shown.push_back(key.description + (key.exclusive ? " X" : " S"));
    }
    return shown;
  }

  std::vector<LockKey> RawKeysOf(const std::string& sql) {
    return LockKeysForChangeset(db_.get(), schema_, ChangesetOf(sql)).value();
  }

  SqliteDb db_;
  Schema schema_;
};

TEST_F(ParticipantLockKeysTest, InsertLocksPrimaryKeyAndEachUniqueValue) {
  EXPECT_THAT(KeysOf("INSERT INTO users VALUES (2, 'b@x.org', 'bob', 'c2', 'us')"),
              UnorderedElementsAre("users row (2) X",
                                   "users unique index sqlite_autoindex_users_1 ('b@x.org') X",
                                   "users unique index sqlite_autoindex_users_2 ('c2', 'us') X"));
}

TEST_F(ParticipantLockKeysTest, NullUniqueValuesTakeNoKey) {
  EXPECT_THAT(KeysOf("INSERT INTO users(id, code) VALUES (2, 'c2')"),
              UnorderedElementsAre("users row (2) X"));
}

TEST_F(ParticipantLockKeysTest, UpdateOfUnrelatedColumnStillLocksCurrentUniqueValues) {
  // The changeset holds only id and name: the rest is read from the table.
  EXPECT_THAT(KeysOf("UPDATE users SET name = 'anna' WHERE id = 1"),
              UnorderedElementsAre("users row (1) X",
                                   "users unique index sqlite_autoindex_users_1 ('A@x.org') X",
                                   "users unique index sqlite_autoindex_users_2 ('c1', 'eu') X"));
}

TEST_F(ParticipantLockKeysTest, UpdateOfUniqueColumnLocksOldAndNewValues) {
  EXPECT_THAT(KeysOf("UPDATE users SET region = 'us' WHERE id = 1"),
              Contains("users unique index sqlite_autoindex_users_2 ('c1', 'eu') X"));
  EXPECT_THAT(KeysOf("UPDATE users SET region = 'us' WHERE id = 1"),
              Contains("users unique index sqlite_autoindex_users_2 ('c1', 'us') X"));
}

TEST_F(ParticipantLockKeysTest, DeleteLocksOldUniqueValues) {
  EXPECT_THAT(KeysOf("DELETE FROM users WHERE id = 1"),
              UnorderedElementsAre("users row (1) X",
                                   "users unique index sqlite_autoindex_users_1 ('A@x.org') X",
                                   "users unique index sqlite_autoindex_users_2 ('c1', 'eu') X"));
}

TEST_F(ParticipantLockKeysTest, ForeignKeysTakeSharedParentKeys) {
  EXPECT_THAT(KeysOf("INSERT INTO orders VALUES (5, 1, 'c1', 'eu')"),
              UnorderedElementsAre("orders row (5) X", "users row (1) S",
                                   "users unique index sqlite_autoindex_users_2 ('c1', 'eu') S"));
  EXPECT_THAT(KeysOf("INSERT INTO orders(id) VALUES (6)"),
              UnorderedElementsAre("orders row (6) X"));
}

TEST_F(ParticipantLockKeysTest, ParentDeleteKeyMatchesChildSharedKey) {
  std::vector<LockKey> child = RawKeysOf("INSERT INTO tags VALUES ('t', 1)");
  std::vector<LockKey> parent = RawKeysOf("DELETE FROM users WHERE id = 1");
  auto is_parent_row = [](const LockKey& key) { return key.description == "users row (1)"; };
  auto c = std::find_if(child.begin(), child.end(), is_parent_row);
  auto p = std::find_if(parent.begin(), parent.end(), is_parent_row);
  ASSERT_NE(c, child.end());
  ASSERT_NE(p, parent.end());
  EXPECT_EQ(c->key, p->key);
  EXPECT_FALSE(c->exclusive);
  EXPECT_TRUE(p->exclusive);
}

TEST_F(ParticipantLockKeysTest, NoCaseUniqueValuesDifferingInCaseShareAKey) {
  std::vector<LockKey> upper = RawKeysOf("INSERT INTO users(id, email) VALUES (2, 'B@X.ORG')");
  std::vector<LockKey> lower = RawKeysOf("INSERT INTO users(id, email) VALUES (3, 'b@x.org')");
  auto email = [](const std::vector<LockKey>& keys) {
    for (const LockKey& key : keys) {
      if (key.description.find("autoindex_users_1") != std::string::npos) return key.key;
    }
    return std::string();
  };
  EXPECT_FALSE(email(upper).empty());
  EXPECT_EQ(email(upper), email(lower));
}

TEST_F(ParticipantLockKeysTest, ExpressionIndexIsLockedAsAWhole) {
  EXPECT_THAT(KeysOf("INSERT INTO lower_names VALUES (1, 'Ann')"),
              UnorderedElementsAre("lower_names row (1) X",
                                   "lower_names unique index lower_names_n (any value) X"));
}

TEST_F(ParticipantLockKeysTest, WholeRealsAcrossInt64sRangeHaveTheEqualIntegersKey) {
  for (const int64_t i : {std::numeric_limits<int64_t>::min(), int64_t{9210000000000000000},
                          int64_t{-9210000000000000000}, int64_t{1} << 62}) {
    EXPECT_EQ(EncodeKeyValue(SqlValue(static_cast<double>(i)), Collation::kBinary),
              EncodeKeyValue(SqlValue(i), Collation::kBinary))
        << i;
  }
  // 2^63 equals no int64.
  EXPECT_NE(EncodeKeyValue(SqlValue(0x1p63), Collation::kBinary),
            EncodeKeyValue(SqlValue(std::numeric_limits<int64_t>::max()), Collation::kBinary));
}

TEST_F(ParticipantLockKeysTest, ValuesCompareAsSqliteDoes) {
  EXPECT_EQ(EncodeKeyValue(SqlValue(1.0), Collation::kBinary),
            EncodeKeyValue(SqlValue(int64_t{1}), Collation::kBinary));
  EXPECT_NE(EncodeKeyValue(SqlValue(std::string("1")), Collation::kBinary),
            EncodeKeyValue(SqlValue(int64_t{1}), Collation::kBinary));
  EXPECT_EQ(EncodeKeyValue(SqlValue(std::string("a  ")), Collation::kRtrim),
            EncodeKeyValue(SqlValue(std::string("a")), Collation::kRtrim));
  EXPECT_EQ(ApplyAffinity(SqlValue(std::string(" 12 ")), Affinity::kInteger),
            SqlValue(int64_t{12}));
  EXPECT_EQ(ApplyAffinity(SqlValue(int64_t{12}), Affinity::kText), SqlValue(std::string("12")));
  EXPECT_EQ(ApplyAffinity(SqlValue(std::string("x")), Affinity::kNumeric),
            SqlValue(std::string("x")));
}

TEST_F(ParticipantLockKeysTest, EmptyChangesetNeedsNoKeys) {
  EXPECT_TRUE(RawKeysOf("UPDATE users SET name = name WHERE id = 99").empty());
}

}  // namespace
}  // namespace txcoord::participant
