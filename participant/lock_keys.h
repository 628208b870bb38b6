// Derives from a changeset the lock keys that keep a YES vote's promise
// (docs/architecture.md, "The promise of YES"): whatever another branch commits
// meanwhile, applying this changeset later cannot conflict.
//
//   - every changed row: exclusive (table, primary key);
//   - every UNIQUE index: exclusive (table, index, values) for the new
//     values (INSERT, UPDATE) and the old ones (DELETE, UPDATE), none if a
//     value is NULL; an index on expressions locks the index as a whole;
//   - every FOREIGN KEY of an inserted or updated row: shared lock on the
//     parent's key (its primary key or the UNIQUE index the FK names), which
//     conflicts with the exclusive key a delete or update of the parent takes.
//
// Values are compared as SQLite would: integral reals equal integers, NOCASE
// and RTRIM collations fold text, and a child's FK values get the parent
// column's affinity. Application-defined collations compare as BINARY.
#ifndef TXCOORD_PARTICIPANT_LOCK_KEYS_H_
#define TXCOORD_PARTICIPANT_LOCK_KEYS_H_

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/sql_value.h"
#include "participant/lock_table.h"
#include "participant/schema.h"

namespace txcoord::participant {

// A changeset carries only the primary key and the changed columns of an
// UPDATE; the other columns are read from `db` by primary key. Reading either
// the committed row or the row as the changeset left it gives the same keys.
// Must run under the connection's lock with the authorizer bypassed.
// INTERNAL if the changeset does not match the schema (changed meanwhile).
// `txid` (empty for a local batch) only names the branch in log lines.
// `statements` (optional, of `db`) keeps the row reads compiled.
absl::StatusOr<std::vector<LockKey>> LockKeysForChangeset(sqlite3* db, const Schema& schema,
                                                          const std::string& changeset,
                                                          const std::string& txid = "",
                                                          StatementCache* statements = nullptr);

// The canonical encoding of one key value under `collation`; exposed for
// tests.
std::string EncodeKeyValue(const SqlValue& value, Collation collation);

// `value` as a column of `affinity` would store it.
SqlValue ApplyAffinity(const SqlValue& value, Affinity affinity);

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_LOCK_KEYS_H_
