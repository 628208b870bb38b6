// What service SQL may do: the authorizer's refusals, writes a branch cannot
// record, DDL, one statement per item, typed parameters and results.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kTx1[] = "c1.1.1";

// Runs `sql` both locally and in a branch; both must fail with `code`.
void ExpectRefusedEverywhere(ParticipantTest* test, Participant& participant,
                             const std::string& sql, absl::StatusCode code,
                             const std::string& message) {
  for (const std::string txid : {"", kTx1}) {
    auto result = participant.Execute(txid, {Sql(sql)}, false, absl::ZeroDuration());
    EXPECT_EQ(result.status().code(), code) << sql << " txid=" << txid << ": " << result.status();
    EXPECT_THAT(result.status().message(), HasSubstr(message)) << sql;
  }
}

TEST_F(ParticipantTest, InternalTablesAreHidden) {
  for (const char* sql :
       {"SELECT * FROM _txcoord_prepared", "DELETE FROM _txcoord_outcomes",
        "INSERT INTO _TXCOORD_PREPARED(txid) VALUES ('x')", "PRAGMA table_info(_txcoord_prepared)",
        "DROP TABLE _txcoord_outcomes",
        "CREATE TRIGGER t AFTER INSERT ON _txcoord_prepared BEGIN SELECT 1; END"}) {
    ExpectRefusedEverywhere(this, *participant_, sql, absl::StatusCode::kPermissionDenied,
                            "internal table");
  }
}

TEST_F(ParticipantTest, AttachAndExtensionsAreRefused) {
  ExpectRefusedEverywhere(this, *participant_, "ATTACH DATABASE ':memory:' AS other",
                          absl::StatusCode::kPermissionDenied, "ATTACH");
  ExpectRefusedEverywhere(this, *participant_, "SELECT load_extension('/tmp/evil.so')",
                          absl::StatusCode::kPermissionDenied, "load_extension");
}

TEST_F(ParticipantTest, PragmasThatChangeStateAreRefused) {
  for (const char* sql :
       {"PRAGMA writable_schema = 1", "PRAGMA journal_mode = DELETE", "PRAGMA foreign_keys = OFF",
        "PRAGMA user_version = 7", "PRAGMA synchronous = OFF", "PRAGMA cache_size"}) {
    ExpectRefusedEverywhere(this, *participant_, sql, absl::StatusCode::kPermissionDenied,
                            "PRAGMA");
  }
  auto introspection = Exec(kTx1, {Sql("PRAGMA table_info(accounts)"), Sql("PRAGMA user_version"),
                                   Sql("SELECT name FROM pragma_index_list('users')")});
  ASSERT_TRUE(introspection.ok()) << introspection.status();
  EXPECT_EQ(introspection->results[0].rows.size(), 3u);
}

TEST_F(ParticipantTest, TransactionControlAndTempObjectsAreRefused) {
  ExpectRefusedEverywhere(this, *participant_, "BEGIN", absl::StatusCode::kInvalidArgument,
                          "transaction control");
  ExpectRefusedEverywhere(this, *participant_, "SAVEPOINT s", absl::StatusCode::kInvalidArgument,
                          "transaction control");
  ExpectRefusedEverywhere(this, *participant_, "CREATE TEMP TABLE scratch(a)",
                          absl::StatusCode::kInvalidArgument, "temporary");
}

TEST_F(ParticipantTest, WritesToSqliteTablesAreRefused) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, v)"),
                     Sql("INSERT INTO seq(v) VALUES (1)")})
                  .ok());
  ExpectRefusedEverywhere(this, *participant_, "DELETE FROM sqlite_sequence",
                          absl::StatusCode::kPermissionDenied, "sqlite_sequence");
  // AUTOINCREMENT still works inside a branch, and its counter at commit.
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO seq(v) VALUES (2)")}).ok());
  ASSERT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(CommittedValue("SELECT seq FROM sqlite_sequence WHERE name = 'seq'"), "2");
}

TEST_F(ParticipantTest, BranchWriteToTableWithoutPrimaryKeyIsRefused) {
  auto write = Exec(kTx1, {Sql("INSERT INTO nopk VALUES (1, 2)")});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(write.status().message(),
              HasSubstr("table nopk has no PRIMARY KEY: writes to it cannot be part of a "
                        "distributed transaction"));
  EXPECT_TRUE(Exec(kTx1, {Sql("SELECT * FROM nopk")}).ok());
  EXPECT_TRUE(Local({Sql("INSERT INTO nopk VALUES (1, 2)")}).ok());
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

TEST_F(ParticipantTest, BranchWriteThroughTriggerToTableWithoutPrimaryKeyIsRefused) {
  ASSERT_TRUE(Local({Sql("CREATE TRIGGER log_user AFTER INSERT ON users BEGIN"
                         " INSERT INTO nopk VALUES (new.id, new.email); END")})
                  .ok());
  auto write = Exec(kTx1, {Sql("INSERT INTO users VALUES (1, 'a@example.com')")});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(write.status().message(), HasSubstr("table nopk has no PRIMARY KEY"));
}

TEST_F(ParticipantTest, BranchWriteOfNullPrimaryKeyIsRefused) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE codes(code TEXT PRIMARY KEY, label TEXT)")}).ok());
  auto write = Exec(kTx1, {Sql("INSERT INTO codes VALUES (NULL, 'lost')")});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(write.status().message(), HasSubstr("PRIMARY KEY is NULL"));
  EXPECT_TRUE(Exec(kTx1, {Sql("INSERT INTO codes VALUES ('a', 'kept')")}).ok());
  ASSERT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(CommittedValue("SELECT label FROM codes WHERE code = 'a'"), "kept");
}

TEST_F(ParticipantTest, BranchWriteToANullKeyOfAnIntegerPrimaryKeyDescIsRefused) {
  // INTEGER PRIMARY KEY DESC is not the rowid (an old SQLite quirk): its
  // key may be NULL, and the session would drop the row's change.
  ASSERT_TRUE(Local({Sql("CREATE TABLE queue(k INTEGER PRIMARY KEY DESC, v TEXT)"),
                     Sql("INSERT INTO queue VALUES (NULL, 'x')")})
                  .ok());
  auto write = Exec(kTx1, {Sql("UPDATE queue SET v = 'y' WHERE k IS NULL")});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(write.status().message(), HasSubstr("PRIMARY KEY is NULL"));
}

TEST_F(ParticipantTest, BranchWriteToTableWithGeneratedColumnsIsRefused) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE gen(id INTEGER PRIMARY KEY, x, y AS (x * 2))")}).ok());
  auto write = Exec(kTx1, {Sql("INSERT INTO gen(id, x) VALUES (1, 2)")});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(write.status().message(), HasSubstr("generated columns"));
  EXPECT_TRUE(Local({Sql("INSERT INTO gen(id, x) VALUES (1, 2)")}).ok());
}

TEST_F(ParticipantTest, DdlInsideBranchIsRefused) {
  for (const char* sql :
       {"CREATE TABLE t2(id INTEGER PRIMARY KEY)", "CREATE INDEX accounts_owner ON accounts(owner)",
        "DROP TABLE nopk", "ALTER TABLE accounts ADD COLUMN note TEXT"}) {
    auto result = Exec(kTx1, {Sql(sql)});
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << sql;
    EXPECT_THAT(result.status().message(), HasSubstr("DDL")) << sql;
  }
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_TRUE(Local({Sql("CREATE INDEX accounts_owner ON accounts(owner)")}).ok());
}

TEST_F(ParticipantTest, OneStatementPerItem) {
  auto two = Local({Sql("SELECT 1; DELETE FROM accounts")});
  EXPECT_EQ(two.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM accounts"), "2");
  EXPECT_TRUE(Local({Sql("SELECT 1; -- a trailing comment")}).ok());
  EXPECT_EQ(Local({Sql("  ")}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Local({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ParticipantTest, ParameterCountMustMatch) {
  EXPECT_EQ(Local({Sql("SELECT ?1 + ?2", {int64_t{1}})}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Local({Sql("SELECT 1", {int64_t{1}})}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ParticipantTest, TypedValuesRoundTrip) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE vals(id INTEGER PRIMARY KEY, i, r, t, b, n)")}).ok());
  const std::vector<SqlValue> row = {int64_t{1},
                                     int64_t{-7},
                                     2.5,
                                     std::string("h\xC3\xA9llo"),
                                     Blob{std::string("\0\1\2", 3)},
                                     std::monostate{}};
  ASSERT_TRUE(Exec(kTx1, {Sql("INSERT INTO vals VALUES (?1, ?2, ?3, ?4, ?5, ?6)", row)}).ok());
  auto read = Exec(kTx1, {Sql("SELECT * FROM vals")});
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->results[0].rows.size(), 1u);
  EXPECT_EQ(read->results[0].rows[0], row);
  EXPECT_EQ(read->results[0].columns, (std::vector<std::string>{"id", "i", "r", "t", "b", "n"}));
}

TEST_F(ParticipantTest, MalformedTxidIsRefused) {
  EXPECT_EQ(Exec("not a txid", {Sql("SELECT 1")}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

// The service's statements are kept compiled between calls
// (KeptStatements); SQLite does not ask the authorizer again for a kept
// one. These run one text twice, the second time on the kept statement,
// and check that it is judged as if compiled anew.

TEST_F(ParticipantTest, AKeptStatementStillBringsItsTableToTheNullKeyCheck) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE queue(k INTEGER PRIMARY KEY DESC, v TEXT)"),
                     Sql("INSERT INTO queue VALUES (5, 'x')")})
                  .ok());
  const std::string update = "UPDATE queue SET v = ?1 WHERE k = 5";
  ASSERT_TRUE(Exec(kTx1, {Sql(update, {std::string("y")})}).ok());
  // Aborted, not committed: a commit through the session extension's apply
  // would expire every compiled statement, and SQLite would compile this
  // one anew (and ask the authorizer) rather than run the kept one.
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  // A row with a NULL key now: the same statement's writes to the table
  // cannot be recorded any more.
  ASSERT_TRUE(Local({Sql("INSERT INTO queue VALUES (NULL, 'n')")}).ok());
  auto write = Exec("c1.1.2", {Sql(update, {std::string("z")})});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument) << write.status();
  EXPECT_THAT(write.status().message(), HasSubstr("PRIMARY KEY is NULL"));
  EXPECT_EQ(CommittedValue("SELECT v FROM queue WHERE k = 5"), "x");
}

TEST_F(ParticipantTest, AKeptStatementIsJudgedAgainOnceTheSchemaMoves) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")}).ok());
  const std::string insert = "INSERT INTO notes VALUES (?1, ?2)";
  ASSERT_TRUE(Exec(kTx1, {Sql(insert, {int64_t{1}, std::string("a")})}).ok());
  ASSERT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  ASSERT_TRUE(
      Local({Sql("DROP TABLE notes"), Sql("CREATE TABLE notes(id INTEGER, body TEXT)")}).ok());
  auto write = Exec("c1.1.2", {Sql(insert, {int64_t{2}, std::string("b")})});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument) << write.status();
  EXPECT_THAT(write.status().message(), HasSubstr("table notes has no PRIMARY KEY"));
  EXPECT_EQ(participant_->BranchCount(), 0u);
}

TEST_F(ParticipantTest, AStatementKeptOutsideABranchIsJudgedAgainInsideOne) {
  const std::string insert = "INSERT INTO nopk VALUES (?1, ?2)";
  ASSERT_TRUE(Local({Sql(insert, {int64_t{1}, int64_t{2}})}).ok());
  ASSERT_TRUE(Local({Sql(insert, {int64_t{3}, int64_t{4}})}).ok());
  auto write = Exec(kTx1, {Sql(insert, {int64_t{5}, int64_t{6}})});
  ASSERT_EQ(write.status().code(), absl::StatusCode::kInvalidArgument) << write.status();
  EXPECT_THAT(write.status().message(), HasSubstr("table nopk has no PRIMARY KEY"));
  EXPECT_EQ(CommittedValue("SELECT count(*) FROM nopk"), "2");
}

// A kept statement that SQLite compiles again inside a batch (the batch
// changed the schema first) is judged by that compile: here a trigger
// added in the same batch makes it write SQLite's own table.
TEST_F(ParticipantTest, AKeptStatementCompiledAgainInItsBatchIsJudgedAgain) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, v)"),
                     Sql("INSERT INTO seq(v) VALUES (1)")})
                  .ok());
  const std::string bump = "UPDATE seq SET v = v + 1";
  ASSERT_TRUE(Local({Sql(bump)}).ok());
  auto tricked = Local({Sql("CREATE TRIGGER forget AFTER UPDATE ON seq BEGIN"
                            " DELETE FROM sqlite_sequence; END"),
                        Sql(bump)});
  ASSERT_EQ(tricked.status().code(), absl::StatusCode::kPermissionDenied) << tricked.status();
  EXPECT_THAT(tricked.status().message(), HasSubstr("sqlite_sequence"));
  EXPECT_EQ(CommittedValue("SELECT seq FROM sqlite_sequence WHERE name = 'seq'"), "1");
  EXPECT_EQ(CommittedValue("SELECT v FROM seq"), "2");
}

// ... and its result's columns are the new compile's.
TEST_F(ParticipantTest, AKeptSelectCompiledAgainInItsBatchNamesTheNewColumns) {
  ASSERT_TRUE(Local({Sql("CREATE TABLE wide(id INTEGER PRIMARY KEY, a)"),
                     Sql("INSERT INTO wide VALUES (1, 'x')")})
                  .ok());
  const std::string all = "SELECT * FROM wide";
  ASSERT_TRUE(Local({Sql(all)}).ok());
  auto read = Local({Sql("ALTER TABLE wide ADD COLUMN b DEFAULT 'y'"), Sql(all)});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->results[1].columns, (std::vector<std::string>{"id", "a", "b"}));
  ASSERT_EQ(read->results[1].rows.size(), 1u);
  EXPECT_EQ(read->results[1].rows[0].size(), 3u);
}

TEST_F(ParticipantTest, AKeptStatementRunsWithEachCallsOwnParameters) {
  const std::string sum = "SELECT ?1 + ?2";
  auto first = Local({Sql(sum, {int64_t{1}, int64_t{2}})});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->results[0].rows[0][0], SqlValue(int64_t{3}));
  // Too few parameters: refused, not run with the last call's second one.
  EXPECT_EQ(Local({Sql(sum, {int64_t{1}})}).status().code(), absl::StatusCode::kInvalidArgument);
  auto again = Local({Sql(sum, {int64_t{10}, int64_t{20}}), Sql(sum, {int64_t{5}, int64_t{6}})});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->results[0].rows[0][0], SqlValue(int64_t{30}));
  EXPECT_EQ(again->results[1].rows[0][0], SqlValue(int64_t{11}));
}

}  // namespace
}  // namespace txcoord::participant::testing
