#include "common/sqlite_db.h"

#include <sqlite3.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

using ::testing::HasSubstr;

class StatementCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
    db_.reset(raw);
    ASSERT_TRUE(ExecSql(db(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").ok());
  }
  sqlite3* db() { return db_.get(); }

  // Count of rows in t, read with a statement of its own.
  int64_t Rows() {
    absl::StatusOr<Statement> count = Statement::Prepare(db(), "SELECT COUNT(*) FROM t");
    EXPECT_TRUE(count.ok()) << count.status();
    EXPECT_EQ(*count->Step(), SQLITE_ROW);
    return count->ColumnInt(0);
  }

  SqliteDb db_;
};

TEST_F(StatementCacheTest, AStatementIsCompiledOnceAndHandedOutResetAndUnbound) {
  StatementCache statements(db());
  absl::StatusOr<Statement*> first = statements.Get("SELECT ?1");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->Bind(1, SqlValue(int64_t{7})).ok());
  ASSERT_EQ(*(*first)->Step(), SQLITE_ROW);  // left mid-way on purpose
  sqlite3_stmt* compiled = (*first)->get();

  absl::StatusOr<Statement*> again = statements.Get("SELECT ?1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->get(), compiled) << "compiled anew";
  EXPECT_EQ(statements.size(), 1u);
  ASSERT_EQ(*(*again)->Step(), SQLITE_ROW);
  EXPECT_EQ((*again)->Column(0), SqlValue()) << "the earlier binding was kept";
}

TEST_F(StatementCacheTest, RunBindsStepsToTheEndAndReleasesWhatItRead) {
  StatementCache statements(db());
  for (int64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(statements.Run("INSERT INTO t (id, v) VALUES (?1, ?2)", {id, "x"}).ok());
  }
  EXPECT_EQ(Rows(), 3);
  // A read is run to its end, so it holds no read transaction open: no
  // statement of the connection is busy.
  ASSERT_TRUE(statements.Run("SELECT * FROM t").ok());
  for (sqlite3_stmt* stmt = sqlite3_next_stmt(db(), nullptr); stmt != nullptr;
       stmt = sqlite3_next_stmt(db(), stmt)) {
    EXPECT_EQ(sqlite3_stmt_busy(stmt), 0) << sqlite3_sql(stmt);
  }
  EXPECT_EQ(statements.size(), 2u);
}

TEST_F(StatementCacheTest, ErrorsNameTheStatementAndCodeAsSqliteSays) {
  StatementCache statements(db());
  ASSERT_TRUE(statements.Run("INSERT INTO t (id, v) VALUES (1, 'a')").ok());
  const absl::Status duplicate = statements.Run("INSERT INTO t (id, v) VALUES (1, 'a')");
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kInvalidArgument) << duplicate;
  EXPECT_THAT(duplicate.message(), HasSubstr("INSERT INTO t (id, v) VALUES (1, 'a'): UNIQUE"));
  EXPECT_EQ(statements.Run("COMMIT").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(statements.Run("SELECT FROM").message(), HasSubstr("syntax error"));
  EXPECT_THAT(statements.Get("SELECT 1; SELECT 2").status().message(),
              HasSubstr("not one statement"));
  EXPECT_THAT(statements.Get("  ").status().message(), HasSubstr("not one statement"));
  // What did not compile to one statement is not kept; what compiled and
  // failed when run is, and runs again.
  EXPECT_EQ(statements.size(), 2u);  // the INSERT and COMMIT
  EXPECT_TRUE(statements.Run("INSERT INTO t (id, v) VALUES (2, 'b')").ok());
}

TEST_F(StatementCacheTest, PastItsCapacityANewStatementDropsTheKeptOnes) {
  StatementCache statements(db(), /*capacity=*/2);
  ASSERT_TRUE(statements.Get("SELECT 1").ok());
  ASSERT_TRUE(statements.Get("SELECT 2").ok());
  ASSERT_TRUE(statements.Get("SELECT 1").ok());
  EXPECT_EQ(statements.size(), 2u);
  ASSERT_TRUE(statements.Get("SELECT 3").ok());
  EXPECT_EQ(statements.size(), 1u);
}

TEST_F(StatementCacheTest, AKeptStatementFollowsASchemaChange) {
  StatementCache statements(db());
  ASSERT_TRUE(statements.Run("INSERT INTO t (id, v) VALUES (1, 'a')").ok());
  absl::StatusOr<Statement*> all = statements.Get("SELECT * FROM t");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(sqlite3_column_count((*all)->get()), 2);
  ASSERT_TRUE(ExecSql(db(), "ALTER TABLE t ADD COLUMN w INTEGER DEFAULT 5").ok());
  all = statements.Get("SELECT * FROM t");
  ASSERT_EQ(*(*all)->Step(), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_count((*all)->get()), 3);
  EXPECT_EQ((*all)->Column(2), SqlValue(int64_t{5}));
}

TEST_F(StatementCacheTest, AWriteTransactionWithKeptControlCommitsAndRollsBack) {
  StatementCache statements(db());
  {
    WriteTransaction tx(db(), &statements);
    ASSERT_TRUE(tx.Begin().ok());
    ASSERT_TRUE(statements.Run("INSERT INTO t (id) VALUES (1)").ok());
    ASSERT_TRUE(tx.Commit().ok());
  }
  {
    WriteTransaction tx(db(), &statements);
    ASSERT_TRUE(tx.Begin().ok());
    ASSERT_TRUE(statements.Run("INSERT INTO t (id) VALUES (2)").ok());
  }  // rolled back
  EXPECT_EQ(Rows(), 1);
  EXPECT_NE(sqlite3_get_autocommit(db()), 0) << "a transaction was left open";
  EXPECT_EQ(statements.size(), 5u);  // BEGIN, COMMIT, ROLLBACK and two INSERTs
}

}  // namespace
}  // namespace txcoord
