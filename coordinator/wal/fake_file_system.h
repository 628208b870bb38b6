// An in-memory FileSystem for tests that models what a power loss keeps:
// per file the bytes synced so far, per directory the entries as of its last
// SyncDir. It can crash, fail the Nth operation of a kind, and run out of
// space, so tests can prove that acknowledged records survive every fault.
//
//   FakeFileSystem fs;
//   fs.InjectFault(FsOp::kSync, 1, absl::DataLossError("EIO"));  // next fdatasync fails
//   ... run the log ...
//   fs.Crash();                                                  // then reopen on &fs
#ifndef TXCOORD_COORDINATOR_WAL_FAKE_FILE_SYSTEM_H_
#define TXCOORD_COORDINATOR_WAL_FAKE_FILE_SYSTEM_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/wal/file_system.h"

namespace txcoord::wal {

// Kinds of mutating operations that faults can target. Reads never fail.
enum class FsOp {
  kAny,     // every kind below
  kCreate,  // NewWritableFile, NewAppendableFile
  kWrite,   // WritableFile::Append, WritableFile::Preallocate
  kSync,    // WritableFile::Sync
  kSyncDir,
  kRename,
  kRemove,
  kTruncate,
};

// Thread-safe. Simplifications (on purpose, they make tests stricter or
// simpler, never laxer): directories exist durably once created; a Crash
// keeps exactly the bytes of each file as of its last sync, so it takes
// back unsynced overwrites of preallocated zeros as well as unsynced
// appends (a real disk may keep more of either);
// removing a file gives no space back to SetFreeBytes.
class FakeFileSystem final : public FileSystem {
 public:
  FakeFileSystem() = default;
  FakeFileSystem(const FakeFileSystem&) = delete;
  FakeFileSystem& operator=(const FakeFileSystem&) = delete;

  // --- Faults -------------------------------------------------------------
  // The `nth` next operation of kind `op` (1: the very next one) fails with
  // `error` and does nothing; with `sticky`, every later one of that kind too.
  void InjectFault(FsOp op, int nth, absl::Status error, bool sticky = false);
  void ClearFaults();
  // Leaves `bytes` of free space: an Append that does not fit writes the part
  // that fits (a short write) and fails with ENOSPC (RESOURCE_EXHAUSTED).
  void SetFreeBytes(uint64_t bytes);
  // Power loss: each file goes back to its bytes at its last sync, each directory only
  // the entries it had at its last SyncDir, and every file handle opened
  // before fails from now on. Faults and free space are left as they are.
  void Crash();
  // The same, but each 512-byte sector written since the last sync lands
  // or not as `seed` draws it: a power loss while the kernel wrote the
  // pages back in no particular order. Within the synced size a sector
  // that did not land keeps its synced bytes (zeros written ahead, say);
  // past it, the file ends with the last sector that landed, and those
  // before it that did not read as zeros.
  void CrashLandingSectorsAtRandom(uint32_t seed);
  // Runs at the start of every WritableFile::Sync, with the path, holding no
  // lock: a test may block in it to hold the writer inside its fdatasync.
  void SetSyncHook(std::function<void(const std::string& path)> hook);

  // --- Inspection ---------------------------------------------------------
  bool Exists(const std::string& path) const;
  // Current bytes of `path` ("" if it does not exist).
  std::string Contents(const std::string& path) const;
  // Bytes of `path` that a Crash would drop or take back now: from the
  // first byte that differs from the synced state to the end.
  uint64_t UnsyncedBytes(const std::string& path) const;
  // Creates or replaces `path` with `data`, durably (entry and bytes).
  void SetContents(const std::string& path, const std::string& data);
  struct Counters {
    uint64_t writes = 0;     // successful Appends and Preallocates' zero writes
    uint64_t syncs = 0;      // successful file Syncs
    uint64_t dir_syncs = 0;  // successful SyncDirs
  };
  Counters counters() const;
  // Successful mutating operations in order, e.g. "create d/1.wal.tmp",
  // "rename d/1.wal.tmp d/1.wal", "syncdir d".
  std::vector<std::string> Trace() const;
  void ClearTrace();

  // --- FileSystem ---------------------------------------------------------
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override;
  absl::Status ReadFile(const std::string& path, std::string* out) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status ListDir(const std::string& dir, std::vector<std::string>* names) override;
  absl::Status Remove(const std::string& path) override;
  absl::Status Truncate(const std::string& path, uint64_t size) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;

 private:
  class Handle;
  struct Node {
    std::string data;
    std::string durable;  // what survives a Crash: data as of its last sync
  };
  using Entries = std::map<std::string, std::shared_ptr<Node>>;
  struct Dir {
    Entries live;
    Entries durable;
  };
  struct Fault {
    FsOp op;
    int countdown;
    absl::Status error;
    bool sticky;
    bool fired = false;
  };

  absl::Status CheckFault(FsOp op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnsureDir(const std::string& dir) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Resolves `path` to its directory and entry name; NotFound without dir.
  absl::Status Locate(const std::string& path, Dir** dir, std::string* name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Node> FindNode(const std::string& path) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status HandleAppend(Handle* h, absl::string_view data);
  absl::Status HandleZeroFill(Handle* h, uint64_t end);
  absl::Status HandleSync(Handle* h);

  mutable absl::Mutex mu_;
  std::map<std::string, Dir> dirs_ ABSL_GUARDED_BY(mu_);
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  uint64_t free_bytes_ ABSL_GUARDED_BY(mu_) = std::numeric_limits<uint64_t>::max();
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  Counters counters_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> trace_ ABSL_GUARDED_BY(mu_);
  std::function<void(const std::string&)> sync_hook_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_FAKE_FILE_SYSTEM_H_
