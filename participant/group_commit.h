// Group commit for the agent's SQLite database: commits run with
// synchronous=NORMAL (SQLite writes the WAL frames and does not sync them),
// and whoever must not answer before its commit is durable calls
// WaitDurable outside the connection mutex. One fdatasync of the WAL file
// then covers every commit made before it began, so concurrent Prepares and
// Commits share a sync, and other SQL runs while it is in flight.
//
//   GroupCommit sync;
//   sync.Attach(db);                 // once, under the connection mutex
//   ... COMMIT under the mutex ...   // the WAL hook counts it
//   absl::Status s = sync.WaitDurable();  // after the mutex is released
//
// The WAL is append-only between checkpoints, and a checkpoint syncs it
// before copying it into the database, so a sync that covers a commit also
// covers everything committed before it.
#ifndef TXCOORD_PARTICIPANT_GROUP_COMMIT_H_
#define TXCOORD_PARTICIPANT_GROUP_COMMIT_H_

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace txcoord::participant {

class GroupCommit final {
 public:
  GroupCommit() = default;
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Opens the database's "-wal" file through the connection's own VFS (so
  // the simulator's disk sees the sync), syncs it once (what a dead
  // predecessor committed but never synced), and installs the WAL hook that
  // counts commits and runs SQLite's automatic checkpoint (the hook replaces
  // it). `db` must be in WAL mode and outlive this object's use; call with
  // the connection's mutex held.
  absl::Status Attach(sqlite3* db, int autocheckpoint_pages = 1000);

  // Returns once every commit made before the call is durable. The first
  // caller with nothing in flight syncs; callers arriving during a sync
  // wait for the next one. A failed sync is fatal: it and every later call
  // fail (the page cache can no longer be trusted; restart the agent).
  absl::Status WaitDurable() { return WaitDurable(absl::ZeroDuration()); }

  // The same, for an answer nobody's next step waits for (a phase-2
  // Commit's acknowledgement): with no sync running that covers it, it
  // first sleeps up to `delay` (real time) for another caller's sync, such
  // as the next Prepare's, and syncs itself only then. One such answer
  // sleeps at a time; another that comes meanwhile syncs for both. What
  // it returns promises the same; it only shares syncs more often. Zero:
  // as above.
  absl::Status WaitDurable(absl::Duration delay);

  // Returns once every commit a read may not see before it is durable is
  // durable: all of them, except those made with SetReadSafe(true). For an
  // answer that only read (an Execute that committed nothing itself).
  absl::Status WaitReadable();

  // Whether the commits made from now on may be read before they are
  // durable: those a power loss cannot take back for good (a prepared
  // branch applied at phase 2, whose decision the coordinator holds until
  // the agent acknowledges it, after a sync; the branch's prepared row is
  // durable, and at restart the agent asks and applies it again). Set, and
  // reset after the commit, under the connection's mutex, which the WAL
  // hook that reads it also runs under.
  void SetReadSafe(bool read_safe) { read_safe_ = read_safe; }

  // Whether a sync is running and a caller it does not cover already
  // sleeps waiting for a later one (under load): a commit made now would
  // wait for the rest of this sync and then a whole one more, with others.
  bool Contended() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return syncing_ && waiting_for_later_ > 0;
  }

  // For tests: waits until exactly `n` callers sleep in WaitDurable;
  // false after `timeout`.
  bool AwaitSleepers(int n, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // Commits counted so far, and of those made durable (tests, metrics).
  uint64_t committed() const { return committed_.load(std::memory_order_acquire); }
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }
  // Delayed waits (WaitDurable(delay)) another caller's sync released, and
  // those that synced themselves once their delay had passed.
  uint64_t delayed_shared() const { return delayed_shared_.load(std::memory_order_relaxed); }
  uint64_t delayed_own() const { return delayed_own_.load(std::memory_order_relaxed); }

 private:
  static int OnWalCommit(void* self, sqlite3* db, const char* schema, int frames);
  // Until a sync covers commit number `wanted` (see WaitDurable(delay)).
  absl::Status WaitDurableThrough(uint64_t wanted, absl::Duration delay);

  std::string wal_path_;  // xOpen needs the name for as long as the file is open
  sqlite3_file* file_ = nullptr;
  int autocheckpoint_pages_ = 1000;
  std::atomic<uint64_t> committed_{0};
  std::atomic<uint64_t> syncs_{0};
  // The last commit made without SetReadSafe(true).
  std::atomic<uint64_t> read_barrier_{0};
  bool read_safe_ = false;  // under the connection's mutex
  std::atomic<uint64_t> delayed_shared_{0};
  std::atomic<uint64_t> delayed_own_{0};

  absl::Mutex mu_;
  absl::CondVar synced_;
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t syncing_target_ ABSL_GUARDED_BY(mu_) = 0;  // what the running sync covers
  int waiting_for_later_ ABSL_GUARDED_BY(mu_) = 0;    // asleep, not covered by it
  int sleeping_ ABSL_GUARDED_BY(mu_) = 0;             // asleep in all
  bool lingering_ ABSL_GUARDED_BY(mu_) = false;       // a delayed wait sleeps
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_GROUP_COMMIT_H_
