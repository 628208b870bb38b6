#include "agent/serving_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace txcoord::participant {

std::string ServingLockPath(const std::string& db_path) { return db_path + "-agent.lock"; }

absl::StatusOr<bool> TryTakeServingLock(const std::string& lock_path) {
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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
