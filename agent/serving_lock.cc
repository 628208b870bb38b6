#include "agent/serving_lock.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/sqlite_db.h"

namespace txcoord::participant {

absl::StatusOr<std::string> DatabaseFileName(const std::string& db) {
  sqlite3* raw = nullptr;
  // The flags Participant::Open uses, so that the name is the one it opens.
  const int rc =
      sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  SqliteDb handle(raw);
  if (rc != SQLITE_OK) return SqliteStatus(raw, rc, absl::StrCat("opening ", db));
  const char* name = sqlite3_db_filename(raw, "main");
  if (name == nullptr || *name == '\0') {
    return absl::InvalidArgumentError(
        absl::StrCat(db, " is not a database file (an in-memory or temporary database)"));
  }
  return std::string(name);
}

std::string ServingLockPath(const std::string& db_file) { return db_file + "-agent.lock"; }

absl::StatusOr<bool> TryTakeServingLock(const std::string& lock_path) {
  // Read-only is enough for flock, and works on a lock file another user
  // left behind.
  const int fd = open(lock_path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;  // fd kept open: the lock lives with it
  const int error = errno;
  close(fd);
  if (error == EWOULDBLOCK) return false;
  return absl::FailedPreconditionError(
      absl::StrCat("cannot lock ", lock_path, ": ", std::strerror(error)));
}

}  // namespace txcoord::participant
