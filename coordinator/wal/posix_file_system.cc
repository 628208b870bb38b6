// FileSystem on POSIX calls. Every error names the operation and the path and
// carries strerror(errno); the status code follows absl::ErrnoToStatusCode.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "coordinator/wal/file_system.h"

namespace txcoord::wal {
namespace {

absl::Status ErrnoStatus(int err, absl::string_view op, absl::string_view path) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(op, " ", path, ": ", std::strerror(err)));
}

// Retries a syscall interrupted by a signal; EINTR is not an I/O error.
template <typename F>
auto RetryOnEintr(F f) -> decltype(f()) {
  decltype(f()) r;
  do {
    r = f();
  } while (r < 0 && errno == EINTR);
  return r;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;

  absl::Status Append(absl::string_view data) override {
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      const ssize_t n = RetryOnEintr([&] { return ::write(fd_, p, left); });
      if (n < 0) return ErrnoStatus(errno, "write", path_);
      p += n;
      left -= static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (RetryOnEintr([&] { return ::fdatasync(fd_); }) != 0) {
      return ErrnoStatus(errno, "fdatasync", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Preallocate(uint64_t end) override {
    // Zeros written for real, not fallocate(2): a block that was allocated
    // but never written is converted at its first write, a metadata change
    // that the next fdatasync must then journal, which is what this avoids.
    static constexpr char kZeros[64 << 10] = {};
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus(errno, "fstat", path_);
    uint64_t at = static_cast<uint64_t>(st.st_size);
    while (at < end) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(end - at, sizeof kZeros));
      const ssize_t n =
          RetryOnEintr([&] { return ::pwrite(fd_, kZeros, want, static_cast<off_t>(at)); });
      if (n < 0) return ErrnoStatus(errno, "write zeros to", path_);
      if (n == 0) return ErrnoStatus(ENOSPC, "write zeros to", path_);
      at += static_cast<uint64_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    const int fd = fd_;
    fd_ = -1;
    // close(2) is not retried on EINTR: on Linux the descriptor is gone anyway.
    if (fd >= 0 && ::close(fd) != 0) return ErrnoStatus(errno, "close", path_);
    return absl::OkStatus();
  }

 private:
  int fd_;
  const std::string path_;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixSequentialFile() override { ::close(fd_); }
  PosixSequentialFile(const PosixSequentialFile&) = delete;
  PosixSequentialFile& operator=(const PosixSequentialFile&) = delete;

  absl::Status Read(size_t n, std::string* out) override {
    out->resize(n);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = RetryOnEintr([&] { return ::read(fd_, &(*out)[got], n - got); });
      if (r < 0) return ErrnoStatus(errno, "read", path_);
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    out->resize(got);
    return absl::OkStatus();
  }

 private:
  const int fd_;
  const std::string path_;
};

class PosixFs final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    const int fd = RetryOnEintr(
        [&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644); });
    if (fd < 0) return ErrnoStatus(errno, "create", path);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    // Not O_APPEND: writes go on from the file offset, so that they can
    // overwrite zeros that Preallocate wrote past it.
    const int fd = RetryOnEintr([&] { return ::open(path.c_str(), O_WRONLY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus(errno, "open for append", path);
    if (::lseek(fd, 0, SEEK_END) < 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(err, "seek to the end of", path);
    }
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
  }

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    const int fd = RetryOnEintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus(errno, "open", path);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(fd, path));
  }

  absl::Status ReadFile(const std::string& path, std::string* out) override {
    auto file = NewSequentialFile(path);
    if (!file.ok()) return file.status();
    out->clear();
    std::string chunk;
    for (;;) {
      absl::Status s = (*file)->Read(1 << 20, &chunk);
      if (!s.ok()) return s;
      if (chunk.empty()) return absl::OkStatus();
      out->append(chunk);
    }
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, "rename", absl::StrCat(from, " -> ", to));
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    const int fd =
        RetryOnEintr([&] { return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus(errno, "open dir", dir);
    absl::Status s;
    if (RetryOnEintr([&] { return ::fsync(fd); }) != 0) s = ErrnoStatus(errno, "fsync dir", dir);
    ::close(fd);
    return s;
  }

  absl::Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    names->clear();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus(errno, "opendir", dir);
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      const absl::string_view name(e->d_name);
      if (name != "." && name != "..") names->emplace_back(name);
      errno = 0;
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoStatus(err, "readdir", dir);
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus(errno, "unlink", path);
    return absl::OkStatus();
  }

  absl::Status Truncate(const std::string& path, uint64_t size) override {
    const int fd = RetryOnEintr([&] { return ::open(path.c_str(), O_WRONLY | O_CLOEXEC); });
    if (fd < 0) return ErrnoStatus(errno, "open for truncate", path);
    absl::Status s;
    if (RetryOnEintr([&] { return ::ftruncate(fd, static_cast<off_t>(size)); }) != 0) {
      s = ErrnoStatus(errno, "ftruncate", path);
    } else if (RetryOnEintr([&] { return ::fsync(fd); }) != 0) {
      // fsync, not fdatasync: the new size is metadata that must reach disk.
      s = ErrnoStatus(errno, "fsync", path);
    }
    ::close(fd);
    return s;
  }

  absl::Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) == 0) return absl::OkStatus();
    const int err = errno;
    struct stat st;
    if (err == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::OkStatus();
    }
    return ErrnoStatus(err, "mkdir", dir);
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", path);
    return static_cast<uint64_t>(st.st_size);
  }
};

}  // namespace

FileSystem* PosixFileSystem() {
  static FileSystem* const fs = new PosixFs();
  return fs;
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

}  // namespace txcoord::wal
