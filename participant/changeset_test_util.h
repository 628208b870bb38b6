// Test helpers on a plain SQLite connection: an in-memory database, and the
// changeset that SQL records when run as a branch runs it (then rolled back).
#ifndef TXCOORD_PARTICIPANT_CHANGESET_TEST_UTIL_H_
#define TXCOORD_PARTICIPANT_CHANGESET_TEST_UTIL_H_

#include <sqlite3.h>

#include <string>

#include "common/sqlite_db.h"
#include "gtest/gtest.h"
#include "participant/changeset.h"
#include "participant/schema.h"

namespace txcoord::participant::testing {

inline SqliteDb OpenInMemoryDb() {
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  return SqliteDb(raw);
}

inline std::string ChangesetOf(sqlite3* db, const Schema* schema, const std::string& sql) {
  EXPECT_TRUE(ExecSql(db, "BEGIN").ok());
  std::string changeset;
  {
    auto recorder = ChangeRecorder::Start(db, schema);
    EXPECT_TRUE(recorder.ok());
    EXPECT_TRUE(ExecSql(db, sql.c_str()).ok()) << sql;
    changeset = (*recorder)->Changeset().value();
  }
  EXPECT_TRUE(ExecSql(db, "ROLLBACK").ok());
  return changeset;
}

}  // namespace txcoord::participant::testing

#endif  // TXCOORD_PARTICIPANT_CHANGESET_TEST_UTIL_H_
