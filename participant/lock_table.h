// The participant's row-lock table: which branch holds which lock key
// (a row's primary key, a UNIQUE value, a referenced parent row), shared or
// exclusive, until its transaction ends. A branch acquires all keys of a
// changeset at once or none, so it never holds a partial set while waiting.
#ifndef TXCOORD_PARTICIPANT_LOCK_TABLE_H_
#define TXCOORD_PARTICIPANT_LOCK_TABLE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace txcoord::participant {

struct LockKey {
  std::string key;          // canonical bytes; equal keys lock the same thing
  std::string description;  // for people: "accounts row (1)"
  bool exclusive = true;
};

struct LockConflict {
  std::string description;  // of the requested key
  std::string holder;       // a txid holding it
};

// Thread-safe. Owners are txids; the empty owner stands for a local
// (autocommit) write, which never holds locks but must not pass one.
class LockTable final {
 public:
  LockTable() = default;
  LockTable(const LockTable&) = delete;
  LockTable& operator=(const LockTable&) = delete;

  // Grants every key to `owner` (non-empty) unless one is held by another
  // owner in a conflicting mode; then grants nothing and returns that
  // conflict. Keys the owner already holds are kept; shared upgrades to
  // exclusive when the owner is the only sharer.
  std::optional<LockConflict> TryAcquire(const std::string& owner, const std::vector<LockKey>& keys)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The first of `keys` that conflicts for `owner`, without acquiring.
  std::optional<LockConflict> FindConflict(const std::string& owner,
                                           const std::vector<LockKey>& keys)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until none of `keys` conflicts for `owner`, or until `deadline`;
  // returns the conflict still standing then, or nullopt once all are free.
  // Nothing is acquired: the caller re-runs its work and tries again.
  std::optional<LockConflict> WaitUntilFree(const std::string& owner,
                                            const std::vector<LockKey>& keys, absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Frees every key `owner` holds and wakes waiters. Idempotent.
  void ReleaseAll(const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);

  size_t KeyCount() ABSL_LOCKS_EXCLUDED(mu_);
  size_t HeldBy(const std::string& owner) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    std::string exclusive_owner;  // empty: none
    absl::flat_hash_set<std::string> shared_owners;
  };

  std::optional<LockConflict> FindConflictLocked(const std::string& owner,
                                                 const std::vector<LockKey>& keys) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::CondVar released_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> owned_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_LOCK_TABLE_H_
