// One txagent serves a database. Two would each keep their own row locks
// and prepared branches in memory, so one could change rows the other's
// prepared branch promised to commit (its phase 2 would then fail to
// apply), and each would resolve the other's in-doubt branches after a
// restart. The agent that serves holds an exclusive flock on
// "<db>-agent.lock"; a second one on the same file waits as a standby.
// flock is only trusted on a local file system, where SQLite's WAL must be
// too (it shares memory through "<db>-shm").
#ifndef TXCOORD_AGENT_SERVING_LOCK_H_
#define TXCOORD_AGENT_SERVING_LOCK_H_

#include <string>

#include "absl/status/statusor.h"

namespace txcoord::participant {

// The file SQLite opens for `db` (a path or a file: URI, as txagent's
// --db): absolute, symbolic links resolved, so that every spelling of one
// database names one lock. Creates the database if missing, as the agent
// then would; takes no lock in it.
absl::StatusOr<std::string> DatabaseFileName(const std::string& db);

// The lock file of the database file `db_file` (DatabaseFileName's).
std::string ServingLockPath(const std::string& db_file);

// Takes the exclusive flock on `lock_path` (created if missing) without
// waiting: true if taken, false if another open file holds it. Once taken
// it is held until the process ends, also by a crash or kill -9, when the
// kernel releases it. An error if the file cannot be opened.
absl::StatusOr<bool> TryTakeServingLock(const std::string& lock_path);

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_SERVING_LOCK_H_
