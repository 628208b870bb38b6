// An in-memory SQLite VFS for the simulator: the real participant runs on
// it with no real disk, and a simulated power loss keeps exactly what a
// disk could keep (synced bytes plus some in-order prefix of later writes).
// SQLite's VFS registry is process-wide, so this is one process-wide object.
//
//   SimVfs& vfs = SimVfs::Install();          // becomes SQLite's default VFS
//   ... Participant::Open({.db_path = "/txsim/7/p0/db", ...}) ...
//   vfs.Freeze("/txsim/7/p0");   // the process dies: its handles stop working
//   participant.reset();         // SQLite's close cannot write anything now
//   vfs.Crash("/txsim/7/p0", rng);
#ifndef TXCOORD_SIM_SIM_VFS_H_
#define TXCOORD_SIM_SIM_VFS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace txcoord::sim {

// Thread-safe (SQLite may call it from any thread; the simulator uses one).
// A "node directory" is everything before the last '/' of a path: one
// simulated machine's disk. Simplification (stricter, never laxer): file
// creation and deletion are durable at once; only file contents can be lost.
class SimVfs final {
 public:
  // Registers the VFS with SQLite as the default (once) and returns it.
  static SimVfs& Install();

  SimVfs(const SimVfs&) = delete;
  SimVfs& operator=(const SimVfs&) = delete;

  // The process owning `dir` is dead: every handle opened under it so far
  // fails from now on, and opening or deleting files there fails until
  // Crash. Call before destroying the SQLite connection, so that its
  // orderly close (checkpoint, WAL delete) cannot touch the disk.
  void Freeze(const std::string& dir);
  // Power loss on `dir`: each file keeps its synced bytes plus the first k
  // of its later writes and truncations, k drawn from `rng` (0..all). Then
  // the directory can be opened again.
  void Crash(const std::string& dir, std::mt19937_64& rng);
  // The process owning `dir` died but the machine did not (kill -9): after
  // Freeze, the files stay as the OS has them, unsynced writes included,
  // and the directory can be opened again.
  void Thaw(const std::string& dir);
  // Deliberate bug for the checker's own test: fsync of a SQLite WAL file
  // ("*-wal") under `dir` makes durable only what was written before the
  // previous fsync, so a commit (a YES vote's prepare) is acknowledged
  // before it is durable.
  void SetLaggingSync(const std::string& dir, bool lagging);
  // For tests of what runs while a sync is in flight: `hook` runs at the
  // start of every sync, with the file's path, on the syncing thread and
  // outside the VFS's lock (it may block). Empty: none.
  void SetSyncHook(std::function<void(const std::string& path)> hook);
  // Forgets every file under `dir` (end of a simulation run).
  void RemoveAll(const std::string& dir);

  // For tests of the VFS itself.
  bool Exists(const std::string& path);
  std::string Contents(const std::string& path);

  // --- Used by the SQLite callbacks (sim_vfs.cc) ---------------------------
  struct Op {
    bool truncate = false;
    uint64_t offset = 0;  // write offset, or new size for a truncate
    std::string bytes;
  };
  struct File {
    std::string data;         // what reads see
    std::string durable;      // what a crash keeps at least
    std::vector<Op> lagged;   // lagging-sync bug: synced once, not yet durable
    std::vector<Op> pending;  // written since the last sync
  };
  struct DirState {
    uint64_t generation = 0;  // bumped by Freeze: older handles are dead
    bool frozen = false;
    bool lagging_sync = false;
  };
  absl::Mutex mu;
  std::function<void(const std::string&)> sync_hook ABSL_GUARDED_BY(mu);
  std::map<std::string, std::shared_ptr<File>> files ABSL_GUARDED_BY(mu);
  std::map<std::string, DirState> dirs ABSL_GUARDED_BY(mu);

 private:
  SimVfs() = default;
};

// "a/b/c" -> "a/b".
std::string DirOf(const std::string& path);

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_SIM_VFS_H_
