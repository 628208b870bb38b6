// ChangesetApplier against the session extension's apply (ApplyChangeset):
// each case records a changeset, changes the database the way the case
// says, and applies the changeset with both inside a transaction rolled
// back afterwards. They must agree on the outcome, the message, and the
// rows left; and the applier must have used statements of its own where
// it says it does.
#include "participant/changeset.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/sqlite_db.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/changeset_test_util.h"

namespace txcoord::participant {
namespace {

using ::testing::HasSubstr;

class ChangesetApplierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::OpenInMemoryDb();
    Run("CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT, balance REAL,"
        "  CHECK (balance >= 0));"
        "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE);"
        "CREATE TABLE pairs(a TEXT, b INTEGER, v BLOB, PRIMARY KEY(a, b)) WITHOUT ROWID;"
        "CREATE TABLE audited(id INTEGER PRIMARY KEY, v INTEGER);"
        "CREATE TABLE audit(n INTEGER);"
        "CREATE TABLE late_key(v TEXT, k TEXT PRIMARY KEY);"
        "CREATE TABLE nocase(name TEXT PRIMARY KEY COLLATE NOCASE, v INTEGER);"
        "CREATE TABLE untyped(k PRIMARY KEY, v);"
        "CREATE TABLE reals(k REAL PRIMARY KEY, v TEXT);"
        "CREATE TABLE anys(k ANY PRIMARY KEY, v TEXT) STRICT;"
        "CREATE TABLE ints(k INT PRIMARY KEY, v TEXT);"
        "CREATE TABLE colcase(k TEXT COLLATE NOCASE, v INTEGER, PRIMARY KEY(k COLLATE BINARY));"
        "CREATE TABLE checked(id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, CHECK (a < b));"
        "CREATE TRIGGER audited_insert AFTER INSERT ON audited BEGIN"
        "  INSERT INTO audit VALUES (new.v); END;"
        "INSERT INTO accounts VALUES (1, 'ann', 10.5), (2, NULL, 20), (3, 'cy', 30);"
        "INSERT INTO users VALUES (1, 'a@x'), (2, 'b@x');"
        "INSERT INTO pairs VALUES ('k', 1, x'00ff'), ('k', 2, NULL);"
        "INSERT INTO late_key VALUES ('one', 'a'), ('two', 'b');"
        "INSERT INTO nocase VALUES ('abc', 1);"
        "INSERT INTO untyped VALUES (1, 'x');"
        "INSERT INTO colcase VALUES ('abc', 1), ('ABC', 1);"
        "INSERT INTO anys VALUES (2, 'a');"
        "INSERT INTO checked VALUES (1, 0, 10), (2, 0, 10);");
    Refresh();
    applier_.emplace(db_.get());
  }

  void Run(const std::string& sql) { ASSERT_TRUE(ExecSql(db_.get(), sql.c_str()).ok()) << sql; }
  void Refresh() { ASSERT_TRUE(schema_.Refresh(db_.get()).ok()); }

  // The changeset of `sql`, rolled back as a branch's is.
  std::string ChangesetOf(const std::string& sql) {
    return testing::ChangesetOf(db_.get(), &schema_, sql);
  }

  // Every row of every table, as text.
  std::string Contents() {
    std::string out;
    for (const char* table : {"accounts", "users", "pairs", "audited", "audit", "late_key",
                              "nocase", "untyped", "reals", "anys", "ints", "colcase", "checked"}) {
      absl::StatusOr<Statement> stmt =
          Statement::Prepare(db_.get(), std::string("SELECT * FROM ") + table + " ORDER BY 1" +
                                            (std::string(table) == "pairs" ? ", 2" : ""));
      EXPECT_TRUE(stmt.ok());
      out += std::string(table) + ":";
      while (stmt->Step().value_or(SQLITE_DONE) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(stmt->get()); ++i) {
          const unsigned char* text = sqlite3_column_text(stmt->get(), i);
          out += " " + std::string(text == nullptr ? "NULL" : reinterpret_cast<const char*>(text)) +
                 "/" + std::to_string(sqlite3_column_type(stmt->get(), i));
        }
        out += ";";
      }
      out += "\n";
    }
    return out;
  }

  struct Outcome {
    std::string status;
    std::string contents;
  };

  // Applies in a transaction rolled back afterwards.
  template <typename ApplyFn>
  Outcome ApplyRolledBack(ApplyFn apply) {
    EXPECT_TRUE(ExecSql(db_.get(), "BEGIN").ok());
    const absl::Status status = apply();
    Outcome outcome{status.ToString(), Contents()};
    EXPECT_TRUE(ExecSql(db_.get(), "ROLLBACK").ok());
    return outcome;
  }

  // Records `change`, runs `meanwhile` (committed), then applies with both;
  // returns the applier's status after checking that both agree.
  absl::Status Compare(const std::string& change, const std::string& meanwhile = "") {
    const std::string changeset = ChangesetOf(change);
    EXPECT_FALSE(changeset.empty()) << change;
    if (!meanwhile.empty()) Run(meanwhile);
    Refresh();
    const Outcome session =
        ApplyRolledBack([&] { return ApplyChangeset(db_.get(), schema_, changeset); });
    absl::Status own_status;
    const Outcome own = ApplyRolledBack([&] {
      own_status = applier_->Apply(schema_, changeset);
      return own_status;
    });
    EXPECT_EQ(own.status, session.status) << change << " after " << meanwhile;
    EXPECT_EQ(own.contents, session.contents) << change << " after " << meanwhile;
    return own_status;
  }

  SqliteDb db_;
  Schema schema_;
  std::optional<ChangesetApplier> applier_;
};

TEST_F(ChangesetApplierTest, CleanChangesApplyAsTheSessionExtensionApplies) {
  EXPECT_TRUE(Compare("UPDATE accounts SET balance = balance + 1 WHERE id = 1;"
                      "UPDATE accounts SET owner = 'bo' WHERE id = 2;"
                      "DELETE FROM accounts WHERE id = 3;"
                      "INSERT INTO accounts VALUES (4, NULL, 0.25);"
                      "UPDATE pairs SET v = x'01' WHERE a = 'k' AND b = 2;"
                      "DELETE FROM pairs WHERE a = 'k' AND b = 1;"
                      "INSERT INTO pairs VALUES ('j', 7, zeroblob(3))")
                  .ok());
  EXPECT_GT(applier_->kept(), 0u);
}

TEST_F(ChangesetApplierTest, AKeyAfterOtherColumnsIsBoundAsItsOwn) {
  EXPECT_TRUE(Compare("UPDATE late_key SET v = 'uno' WHERE k = 'a';"
                      "DELETE FROM late_key WHERE k = 'b';"
                      "INSERT INTO late_key VALUES ('three', 'c')")
                  .ok());
  EXPECT_GT(applier_->kept(), 0u);
  EXPECT_THAT(Compare("UPDATE late_key SET v = 'eins' WHERE k = 'a'",
                      "UPDATE late_key SET v = 'one!' WHERE k = 'a'")
                  .message(),
              HasSubstr("UPDATE on table late_key: row changed since the branch read it"));
}

TEST_F(ChangesetApplierTest, AnUpdateOfARowChangedMeanwhileIsRefused) {
  absl::Status status = Compare("UPDATE accounts SET balance = 11 WHERE id = 1",
                                "UPDATE accounts SET balance = 12 WHERE id = 1");
  EXPECT_THAT(status.message(),
              HasSubstr("UPDATE on table accounts: row changed since the branch read it"));
}

TEST_F(ChangesetApplierTest, AnUpdateFromNullOfARowSetMeanwhileIsRefused) {
  absl::Status status = Compare("UPDATE accounts SET owner = 'bo' WHERE id = 2",
                                "UPDATE accounts SET owner = 'al' WHERE id = 2");
  EXPECT_THAT(status.message(), HasSubstr("row changed since the branch read it"));
}

TEST_F(ChangesetApplierTest, AChangeOfARowDeletedMeanwhileIsRefused) {
  EXPECT_THAT(
      Compare("UPDATE accounts SET balance = 1 WHERE id = 1", "DELETE FROM accounts WHERE id = 1")
          .message(),
      HasSubstr("UPDATE on table accounts: row no longer exists"));
  EXPECT_THAT(
      Compare("DELETE FROM accounts WHERE id = 3", "DELETE FROM accounts WHERE id = 3").message(),
      HasSubstr("DELETE on table accounts: row no longer exists"));
}

TEST_F(ChangesetApplierTest, ADeleteOfARowChangedMeanwhileIsRefused) {
  EXPECT_THAT(
      Compare("DELETE FROM accounts WHERE id = 3", "UPDATE accounts SET owner = NULL WHERE id = 3")
          .message(),
      HasSubstr("DELETE on table accounts: row changed since the branch read it"));
}

TEST_F(ChangesetApplierTest, AnInsertOfAKeyTakenMeanwhileIsRefused) {
  EXPECT_THAT(
      Compare("INSERT INTO accounts VALUES (9, 'x', 1)", "INSERT INTO accounts VALUES (9, 'y', 2)")
          .message(),
      HasSubstr("INSERT on table accounts: a row with the same primary key exists"));
}

TEST_F(ChangesetApplierTest, AUniqueValueTakenMeanwhileFailsAConstraint) {
  EXPECT_THAT(Compare("INSERT INTO users VALUES (5, 'c@x')", "INSERT INTO users VALUES (6, 'c@x')")
                  .message(),
              HasSubstr("INSERT on table users: a constraint fails"));
  EXPECT_THAT(
      Compare("UPDATE users SET email = 'd@x' WHERE id = 1", "INSERT INTO users VALUES (7, 'd@x')")
          .message(),
      HasSubstr("UPDATE on table users: a constraint fails"));
}

TEST_F(ChangesetApplierTest, AUniqueValueMovedBetweenRowsGoesToTheSessionExtension) {
  // Row 1 takes the value row 2 gives up: in the changeset's order (row 1
  // first) only a retry after the other changes, which the session
  // extension makes, gets it through.
  EXPECT_TRUE(Compare("UPDATE users SET email = 'c@x' WHERE id = 2;"
                      "UPDATE users SET email = 'b@x' WHERE id = 1")
                  .ok());
  EXPECT_EQ(applier_->kept(), 0u);
}

TEST_F(ChangesetApplierTest, KeysThatCompareEqualWhenStoredApartGoToTheSessionExtension) {
  // A NOCASE key renamed to another case is two changes of one row.
  EXPECT_FALSE(Compare("UPDATE nocase SET name = 'ABC' WHERE name = 'abc'").ok());
  EXPECT_TRUE(Compare("UPDATE nocase SET v = 2 WHERE name = 'abc'").ok());
  EXPECT_TRUE(Compare("UPDATE untyped SET v = 'y' WHERE k = 1").ok());
  // STRICT keeps 2 and 2.0 apart in an ANY column, as an untyped one does.
  EXPECT_TRUE(Compare("UPDATE anys SET v = 'b' WHERE k = 2").ok());
  // A REAL key inserted as 1 reads back as 1.0 when updated: two changes.
  EXPECT_FALSE(
      Compare("INSERT INTO reals VALUES (1, 'a'); UPDATE reals SET v = 'b' WHERE k = 1").ok());
  // The key's index is BINARY, its column NOCASE, which a lookup by `=`
  // uses: 'abc' finds 'ABC' too.
  EXPECT_FALSE(Compare("UPDATE colcase SET v = 2 WHERE k = 'abc' COLLATE BINARY;"
                       "DELETE FROM colcase WHERE k = 'ABC' COLLATE BINARY")
                   .ok());
  EXPECT_EQ(applier_->kept(), 0u);
}

TEST_F(ChangesetApplierTest, AChangeThatFailsACheckIsReportedAfterTheTablesOtherChanges) {
  // Both rows' updates fail once the other columns moved meanwhile: one by
  // its CHECK, one as changed. Whichever the changeset lists first, both
  // report the one the session extension reports (it retries a change that
  // failed a constraint after the table's others).
  for (const auto& [check_fails, changed] : {std::pair{1, 2}, std::pair{2, 1}}) {
    SCOPED_TRACE(check_fails);
    const std::string meanwhile =
        "UPDATE checked SET b = 3 WHERE id = " + std::to_string(check_fails) +
        "; UPDATE checked SET a = 1 WHERE id = " + std::to_string(changed);
    EXPECT_FALSE(Compare("UPDATE checked SET a = 5", meanwhile).ok());
    Run("UPDATE checked SET a = 0, b = 10");
  }
  EXPECT_THAT(Compare("UPDATE checked SET a = 5", "UPDATE checked SET b = 3").message(),
              HasSubstr("UPDATE on table checked: a constraint fails"));
  EXPECT_GT(applier_->kept(), 0u);
}

TEST_F(ChangesetApplierTest, AppliesAsRecordedOnlyWhereNoChangeCanDependOnAnother) {
  EXPECT_TRUE(AppliesAsRecorded(schema_, ChangesetOf("UPDATE accounts SET balance = 1;"
                                                     "INSERT INTO pairs VALUES ('z', 1, NULL)")));
  EXPECT_TRUE(AppliesAsRecorded(schema_, ChangesetOf("INSERT INTO audited VALUES (2, 2)")));
  EXPECT_FALSE(AppliesAsRecorded(schema_, ChangesetOf("INSERT INTO users VALUES (3, 'z@x')")));
  EXPECT_FALSE(AppliesAsRecorded(schema_, ChangesetOf("UPDATE nocase SET v = 3")));
  EXPECT_FALSE(AppliesAsRecorded(schema_, ChangesetOf("UPDATE untyped SET v = 3")));
  EXPECT_FALSE(AppliesAsRecorded(schema_, ChangesetOf("INSERT INTO reals VALUES (2, 'c')")));
  EXPECT_FALSE(AppliesAsRecorded(schema_, ChangesetOf("INSERT INTO anys VALUES (3, 'c')")));
  // INT (not INTEGER) PRIMARY KEY is no rowid; it keeps -2^63 as a real.
  EXPECT_TRUE(AppliesAsRecorded(schema_, ChangesetOf("INSERT INTO ints VALUES (7, 'c')")));
  EXPECT_FALSE(AppliesAsRecorded(
      schema_, ChangesetOf("INSERT INTO ints VALUES (-9223372036854775808.0, 'c')")));
  EXPECT_FALSE(AppliesAsRecorded(schema_, ChangesetOf("UPDATE colcase SET v = 3")));
  EXPECT_TRUE(AppliesAsRecorded(schema_, ChangesetOf("UPDATE checked SET a = 1")));
  Run("CREATE TABLE children(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES accounts(id))");
  Refresh();
  EXPECT_FALSE(AppliesAsRecorded(schema_, ChangesetOf("UPDATE accounts SET balance = 1")));
}

TEST_F(ChangesetApplierTest, ATableWithATriggerGoesToTheSessionExtensionWithTriggersOff) {
  EXPECT_TRUE(Compare("INSERT INTO audited VALUES (1, 5)").ok());
  EXPECT_EQ(applier_->kept(), 0u);
}

TEST_F(ChangesetApplierTest, StatementsAreKeptAcrossAppliesAndDroppedWhenTheSchemaChanges) {
  const std::string changeset = ChangesetOf("UPDATE accounts SET balance = 1 WHERE id = 1");
  for (int i = 0; i < 3; ++i) {
    Run("BEGIN");
    ASSERT_TRUE(applier_->Apply(schema_, changeset).ok());
    Run("ROLLBACK");
  }
  EXPECT_EQ(applier_->kept(), 1u);
  Run("CREATE TABLE later(id INTEGER PRIMARY KEY)");
  Refresh();
  const std::string insert = ChangesetOf("INSERT INTO later VALUES (1)");
  Run("BEGIN");
  ASSERT_TRUE(applier_->Apply(schema_, insert).ok());
  Run("ROLLBACK");
  EXPECT_EQ(applier_->kept(), 1u);  // the INSERT alone
}

TEST_F(ChangesetApplierTest, AForeignKeyInTheSchemaLeavesEveryApplyToTheSessionExtension) {
  Run("CREATE TABLE children(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES accounts(id))");
  Refresh();
  EXPECT_TRUE(Compare("UPDATE accounts SET balance = 2 WHERE id = 1").ok());
  EXPECT_EQ(applier_->kept(), 0u);
}

}  // namespace
}  // namespace txcoord::participant
