// What KeptStatements keeps: a service statement run again is the same
// compiled statement, and what must be judged at every compile is never
// kept. How a kept statement is still judged: participant_sql_test.cc.
#include "participant/statement_runner.h"

#include <sqlite3.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "participant/authorizer.h"
#include "participant/schema.h"

namespace txcoord::participant {
namespace {

class KeptStatementsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db_, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)", nullptr, nullptr, nullptr),
        SQLITE_OK);
    ASSERT_TRUE(schema_.Refresh(db_).ok());
    authorizer_.Install(db_);
    kept_.FollowSchema(schema_.version());
  }
  void TearDown() override {
    kept_.FollowSchema(-2);  // finalizes every kept statement before the close
    EXPECT_EQ(sqlite3_close(db_), SQLITE_OK);
  }
  absl::Status Run(Authorizer::Mode mode, const std::vector<std::string>& sqls) {
    std::vector<SqlStatement> statements;
    for (const std::string& sql : sqls) statements.push_back(SqlStatement{sql, {}});
    authorizer_.ResetBatch();
    return RunStatements(db_, authorizer_, mode, statements, ResultLimits{}, absl::InfiniteFuture(),
                         &kept_)
        .status();
  }
  // How many times the statement kept for `sql` ran; -1 if none is kept.
  int Runs(Authorizer::Mode mode, const std::string& sql) {
    Statement* kept = kept_.Find(mode, sql, authorizer_);
    return kept == nullptr ? -1 : sqlite3_stmt_status(kept->get(), SQLITE_STMTSTATUS_RUN, 0);
  }

  sqlite3* db_ = nullptr;
  Schema schema_;
  Authorizer authorizer_{&schema_};
  KeptStatements kept_;
};

TEST_F(KeptStatementsTest, AStatementRunAgainIsTheOneCompiledBefore) {
  const std::string update = "UPDATE t SET v = 1 WHERE id = 7";
  ASSERT_TRUE(Run(Authorizer::Mode::kBranch, {update}).ok());
  ASSERT_TRUE(Run(Authorizer::Mode::kBranch, {update, update}).ok());
  EXPECT_EQ(Runs(Authorizer::Mode::kBranch, update), 3);
  EXPECT_EQ(kept_.size(), 1u);
  // Outside a branch it is judged, so compiled and kept, apart.
  EXPECT_EQ(Runs(Authorizer::Mode::kLocal, update), -1);
  ASSERT_TRUE(Run(Authorizer::Mode::kLocal, {update}).ok());
  EXPECT_EQ(Runs(Authorizer::Mode::kLocal, update), 1);
  EXPECT_EQ(kept_.size(), 2u);
}

TEST_F(KeptStatementsTest, RefusedStatementsDdlAndWhatFollowsItAreNotKept) {
  EXPECT_FALSE(Run(Authorizer::Mode::kBranch, {"DELETE FROM sqlite_master"}).ok());
  EXPECT_FALSE(Run(Authorizer::Mode::kBranch, {"CREATE TABLE u(id INTEGER PRIMARY KEY)"}).ok());
  ASSERT_TRUE(Run(Authorizer::Mode::kLocal,
                  {"CREATE TABLE u(id INTEGER PRIMARY KEY)", "INSERT INTO u VALUES (1)"})
                  .ok());
  EXPECT_EQ(kept_.size(), 0u);
}

TEST_F(KeptStatementsTest, AMovedSchemaVersionDropsThemAll) {
  ASSERT_TRUE(Run(Authorizer::Mode::kBranch, {"SELECT v FROM t"}).ok());
  kept_.FollowSchema(schema_.version());
  EXPECT_EQ(kept_.size(), 1u);
  kept_.FollowSchema(schema_.version() + 1);
  EXPECT_EQ(kept_.size(), 0u);
}

}  // namespace
}  // namespace txcoord::participant
