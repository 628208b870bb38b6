#include "participant/group_commit.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace txcoord::participant {

GroupCommit::~GroupCommit() {
  if (file_ == nullptr) return;
  if (file_->pMethods != nullptr) file_->pMethods->xClose(file_);
  std::free(file_);
}

absl::Status GroupCommit::Attach(sqlite3* db, int autocheckpoint_pages) {
  if (file_ != nullptr) return absl::FailedPreconditionError("GroupCommit is already attached");
  const char* db_file = sqlite3_db_filename(db, "main");
  if (db_file == nullptr || db_file[0] == '\0') {
    return absl::FailedPreconditionError("GroupCommit needs an on-disk database");
  }
  sqlite3_vfs* vfs = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) != SQLITE_OK ||
      vfs == nullptr) {
    return absl::InternalError("cannot find the database's VFS");
  }
  wal_path_ = absl::StrCat(db_file, "-wal");
  file_ = static_cast<sqlite3_file*>(std::calloc(1, vfs->szOsFile));
  if (file_ == nullptr) return absl::ResourceExhaustedError("out of memory");
  int out_flags = 0;
  const int rc =
      vfs->xOpen(vfs, wal_path_.c_str(), file_,
                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_WAL, &out_flags);
  if (rc != SQLITE_OK) {
    if (file_->pMethods != nullptr) file_->pMethods->xClose(file_);
    std::free(file_);
    file_ = nullptr;
    return absl::InternalError(
        absl::StrCat("cannot open ", wal_path_, " to sync it: ", sqlite3_errstr(rc)));
  }
  // A previous process may have died with commits written but not synced;
  // SQLite reads them back from the page cache as committed, and the
  // counter below knows nothing of them. Sync them before anything is
  // answered about them.
  if (const int synced = file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL); synced != SQLITE_OK) {
    return absl::UnavailableError(
        absl::StrCat("fdatasync of ", wal_path_, " at start failed: ", sqlite3_errstr(synced)));
  }
  autocheckpoint_pages_ = autocheckpoint_pages;
  sqlite3_wal_hook(db, &GroupCommit::OnWalCommit, this);
  return absl::OkStatus();
}

int GroupCommit::OnWalCommit(void* self, sqlite3* db, const char* schema, int frames) {
  auto* sync = static_cast<GroupCommit*>(self);
  // Called after the commit's frames are written (not synced): whoever
  // reads this count before syncing covers this commit.
  const uint64_t number = sync->committed_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (!sync->read_safe_) sync->read_barrier_.store(number, std::memory_order_release);
  if (sync->autocheckpoint_pages_ > 0 && frames >= sync->autocheckpoint_pages_) {
    // What SQLite's own hook does. A checkpoint syncs the WAL first.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  return SQLITE_OK;
}

bool GroupCommit::AwaitSleepers(int n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return sleeping_ == n; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

absl::Status GroupCommit::WaitDurable(absl::Duration delay) {
  return WaitDurableThrough(committed(), delay);
}

absl::Status GroupCommit::WaitReadable() {
  return WaitDurableThrough(read_barrier_.load(std::memory_order_acquire), absl::ZeroDuration());
}

absl::Status GroupCommit::WaitDurableThrough(uint64_t wanted, absl::Duration delay) {
  const bool delayed = delay > absl::ZeroDuration();
  const absl::Time lead_at = delayed ? absl::Now() + delay : absl::InfinitePast();
  absl::MutexLock lock(&mu_);
  while (true) {
    if (!failed_.ok()) return failed_;
    if (durable_ >= wanted) {
      if (delayed) delayed_shared_.fetch_add(1, std::memory_order_relaxed);
      return absl::OkStatus();
    }
    if (!syncing_) {
      // Nobody syncs yet: sleep until a sync another caller starts ends
      // (its SignalAll), or the delay passes. One answer at a time: with
      // two, both of a coordinator's calls in flight to this agent could
      // be waiting here, and the Prepare whose sync would end their wait
      // queued behind them; the second syncs for both.
      if (absl::Now() >= lead_at || lingering_) break;
      ++sleeping_;
      lingering_ = true;
      synced_.WaitWithDeadline(&mu_, lead_at);
      lingering_ = false;
      --sleeping_;
      continue;
    }
    // Every sleeper wakes when the running sync ends, and counts again.
    const bool for_a_later_sync = wanted > syncing_target_;
    if (for_a_later_sync) ++waiting_for_later_;
    ++sleeping_;
    synced_.Wait(&mu_);
    --sleeping_;
    if (for_a_later_sync) --waiting_for_later_;
  }
  // Leader: one sync for everything committed up to now.
  if (delayed) delayed_own_.fetch_add(1, std::memory_order_relaxed);
  syncing_ = true;
  const uint64_t target = committed();
  syncing_target_ = target;
  mu_.Unlock();
  const int rc =
      file_ == nullptr ? SQLITE_MISUSE : file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL);
  mu_.Lock();
  syncing_ = false;
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (rc != SQLITE_OK) {
    failed_ = absl::UnavailableError(absl::StrCat(
        "fdatasync of ", wal_path_, " failed (", sqlite3_errstr(rc),
        "): recent commits may not be durable; every later commit fails until the agent restarts"));
    TXLOG(ERROR) << failed_.message();
  } else if (target > durable_) {
    durable_ = target;
  }
  synced_.SignalAll();
  return failed_;  // OK: the sync covered `target`, which is at least `wanted`
}

}  // namespace txcoord::participant
