// The few file operations the WAL needs, behind an interface so that tests
// can inject crashes, I/O errors and a full disk (FakeFileSystem), and so
// that the log's durability rules are spelled out in one place.
//
//   FileSystem* fs = PosixFileSystem();
//   auto file = fs->NewWritableFile("/data/0000000000000001.wal.tmp");
//   if (file.ok()) status = (*file)->Append(bytes);  // then (*file)->Sync()
#ifndef TXCOORD_COORDINATOR_WAL_FILE_SYSTEM_H_
#define TXCOORD_COORDINATOR_WAL_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txcoord::wal {

// A file open for appending. Not thread-safe: one owner at a time.
// Errors carry the path and, for POSIX, the errno text.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes all of `data` where the last Append ended (at first: the end of
  // the file as opened), looping over short writes; over zeros that
  // Preallocate put there, or past the end. On error an unknown prefix of
  // `data` may have been written.
  ABSL_MUST_USE_RESULT virtual absl::Status Append(absl::string_view data) = 0;
  // Makes every byte written so far durable (fdatasync). After a failed
  // Sync nothing about earlier unsynced bytes is known: never retry it.
  ABSL_MUST_USE_RESULT virtual absl::Status Sync() = 0;
  // Writes zeros from the end of the file up to `end` bytes (nothing if it
  // is that long already) without moving where Append writes; durable with
  // the next Sync. Appends over those zeros, once synced, overwrite blocks
  // the file already has, so their fdatasync need not also make a new file
  // size durable. On error (a full disk) an unknown part of the zeros may
  // be written; nothing before the end of the file is touched.
  ABSL_MUST_USE_RESULT virtual absl::Status Preallocate(uint64_t end) = 0;
  // Releases the file; does not sync.
  ABSL_MUST_USE_RESULT virtual absl::Status Close() = 0;
};

// A file read from the start in chunks. Not thread-safe.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Replaces *out with up to `n` next bytes; an empty *out means end of file.
  ABSL_MUST_USE_RESULT virtual absl::Status Read(size_t n, std::string* out) = 0;
};

// Paths are plain strings ("dir/name"). Implementations are thread-safe.
// A new file or a rename is durable only after SyncDir of its directory.
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates `path`, or empties it if it exists.
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens an existing `path` to append after its current end (nothing after
  // that end is preallocated: cut such zeros with Truncate first).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) = 0;
  // Reads the whole file into *out.
  ABSL_MUST_USE_RESULT virtual absl::Status ReadFile(const std::string& path, std::string* out) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  ABSL_MUST_USE_RESULT virtual absl::Status Rename(const std::string& from,
                                                   const std::string& to) = 0;
  // Makes creations, renames and removals in `dir` durable (fsync on the dir).
  ABSL_MUST_USE_RESULT virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Names (not paths) of the entries in `dir`, without "." and "..", unsorted.
  ABSL_MUST_USE_RESULT virtual absl::Status ListDir(const std::string& dir,
                                                    std::vector<std::string>* names) = 0;
  ABSL_MUST_USE_RESULT virtual absl::Status Remove(const std::string& path) = 0;
  // Cuts `path` to `size` bytes and syncs it: unlike Append, a Truncate is
  // durable when it returns (the data part; the directory is unchanged).
  ABSL_MUST_USE_RESULT virtual absl::Status Truncate(const std::string& path, uint64_t size) = 0;
  // Creates `dir` (not its parents); OK if it already exists as a directory.
  ABSL_MUST_USE_RESULT virtual absl::Status CreateDir(const std::string& dir) = 0;
  virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;
};

// The process-wide POSIX file system. Never null, never deleted.
FileSystem* PosixFileSystem();

// "dir/name", without doubling a trailing slash.
std::string JoinPath(absl::string_view dir, absl::string_view name);

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_FILE_SYSTEM_H_
