#include "coordinator/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/txid.h"

namespace txcoord::coordinator {
namespace {

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status MakeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      partial = path.substr(0, i);
      if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST)
        return Errno("cannot create", partial);
    }
  }
  return absl::OkStatus();
}

// Reads a small text file; NOT_FOUND if missing.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    // Only a file that is not there is "new": any other failure must not
    // restart the epochs (old txids would be issued again).
    if (errno == ENOENT) return absl::NotFoundError(path);
    return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(buffer.str()));
}

// Replaces `path` atomically and durably: write a temporary file, fsync it,
// rename it over the old one, fsync the directory.
absl::Status WriteFileDurably(const std::string& dir, const std::string& name,
                              const std::string& contents) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  const std::string line = contents + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (!ok) return Errno("cannot write", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename to", path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno("cannot open", dir);
  const bool synced = ::fsync(dfd) == 0;
  ::close(dfd);
  if (!synced) return Errno("cannot fsync", dir);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDir>> DataDir::Open(const std::string& path,
                                                       const std::string& cluster_id) {
  if (path.empty()) return absl::InvalidArgumentError("--data-dir is required");
  if (!cluster_id.empty() && !IsValidName(cluster_id, /*allow_dot=*/false)) {
    return absl::InvalidArgumentError("--cluster-id must be 1 to 128 characters of [A-Za-z0-9_-]");
  }
  if (absl::Status s = MakeDirs(path); !s.ok()) return s;
  const std::string lock_path = path + "/LOCK";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot open", lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", path, " is in use by another txcoord process"));
  }
  std::unique_ptr<DataDir> dir(new DataDir(path, fd));

  absl::StatusOr<std::string> stored = ReadSmallFile(path + "/CLUSTER_ID");
  if (!stored.ok() && !absl::IsNotFound(stored.status())) return stored.status();
  if (stored.ok()) {
    if (!cluster_id.empty() && cluster_id != *stored) {
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", path, " belongs to cluster \"", *stored,
                       "\" but --cluster-id is \"", cluster_id, "\""));
    }
    dir->cluster_id_ = *stored;
  } else {
    std::string id = cluster_id;
    if (id.empty()) {
      std::random_device rd;
      id = absl::StrFormat("c%08x", rd());
    }
    if (absl::Status s = WriteFileDurably(path, "CLUSTER_ID", id); !s.ok()) return s;
    dir->cluster_id_ = id;
  }

  uint64_t epoch = 0;
  absl::StatusOr<std::string> epoch_text = ReadSmallFile(path + "/EPOCH");
  if (!epoch_text.ok() && !absl::IsNotFound(epoch_text.status())) return epoch_text.status();
  if (epoch_text.ok() && !absl::SimpleAtoi(*epoch_text, &epoch)) {
    return absl::DataLossError(absl::StrCat(path, "/EPOCH is corrupt: \"", *epoch_text, "\""));
  }
  dir->epoch_ = epoch + 1;
  if (absl::Status s = WriteFileDurably(path, "EPOCH", absl::StrCat(dir->epoch_)); !s.ok())
    return s;
  return dir;
}

DataDir::~DataDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

}  // namespace txcoord::coordinator
