#include "participant/lock_table.h"

#include <algorithm>

#include "common/check.h"

namespace txcoord::participant {

std::optional<LockConflict> LockTable::FindConflictLocked(const std::string& owner,
                                                          const std::vector<LockKey>& keys) const {
  for (const LockKey& key : keys) {
    auto it = entries_.find(key.key);
    if (it == entries_.end()) continue;
    const Entry& entry = it->second;
    if (!entry.exclusive_owner.empty() && entry.exclusive_owner != owner) {
      return LockConflict{key.description, entry.exclusive_owner};
    }
    if (!key.exclusive) continue;
    for (const std::string& sharer : entry.shared_owners) {
      if (sharer != owner) return LockConflict{key.description, sharer};
    }
  }
  return std::nullopt;
}

std::optional<LockConflict> LockTable::TryAcquire(const std::string& owner,
                                                  const std::vector<LockKey>& keys) {
  // The empty owner is a local write's: a lock held under it would not
  // stop local writes (FindConflict("") takes it as their own).
  TXCOORD_CHECK(!owner.empty()) << "a lock acquired without an owner";
  absl::MutexLock lock(&mu_);
  if (std::optional<LockConflict> conflict = FindConflictLocked(owner, keys)) return conflict;
  if (keys.empty()) return std::nullopt;
  absl::flat_hash_set<std::string>& owned = owned_[owner];
  for (const LockKey& key : keys) {
    Entry& entry = entries_[key.key];
    // Invariant, from FindConflictLocked just above: a key is granted only
    // if no other owner holds it exclusively, nor (for exclusive) shares it.
    TXCOORD_CHECK(entry.exclusive_owner.empty() || entry.exclusive_owner == owner)
        << "txid=" << owner << " granted " << key.description << " held exclusively by txid "
        << entry.exclusive_owner;
    TXCOORD_CHECK(!key.exclusive || entry.shared_owners.empty() ||
                  (entry.shared_owners.size() == 1 && entry.shared_owners.contains(owner)))
        << "txid=" << owner << " granted " << key.description
        << " exclusively while other branches share it";
    if (key.exclusive) {
      entry.exclusive_owner = owner;
    } else {
      entry.shared_owners.insert(owner);
    }
    owned.insert(key.key);
  }
  return std::nullopt;
}

std::optional<LockConflict> LockTable::FindConflict(const std::string& owner,
                                                    const std::vector<LockKey>& keys) {
  absl::MutexLock lock(&mu_);
  return FindConflictLocked(owner, keys);
}

std::optional<LockConflict> LockTable::WaitUntilFree(const std::string& owner,
                                                     const std::vector<LockKey>& keys,
                                                     absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  while (true) {
    std::optional<LockConflict> conflict = FindConflictLocked(owner, keys);
    if (!conflict.has_value()) return std::nullopt;
    // WaitWithDeadline reports a timeout, but a release may have raced with
    // it: look once more before giving up.
    if (released_.WaitWithDeadline(&mu_, deadline)) return FindConflictLocked(owner, keys);
  }
}

void LockTable::ReleaseAll(const std::string& owner) {
  absl::MutexLock lock(&mu_);
  auto owned = owned_.find(owner);
  if (owned == owned_.end()) return;
  for (const std::string& key : owned->second) {
    // Invariant: owned_ and entries_ agree; a key is released only by an
    // owner that holds it.
    auto it = entries_.find(key);
    TXCOORD_CHECK(it != entries_.end()) << "txid=" << owner << " owns a lock nobody holds";
    Entry& entry = it->second;
    TXCOORD_CHECK(entry.exclusive_owner == owner || entry.shared_owners.contains(owner))
        << "txid=" << owner << " releases a lock held by txid " << entry.exclusive_owner;
    if (entry.exclusive_owner == owner) entry.exclusive_owner.clear();
    entry.shared_owners.erase(owner);
    if (entry.exclusive_owner.empty() && entry.shared_owners.empty()) entries_.erase(it);
  }
  owned_.erase(owned);
  // Postcondition: nothing is held under `owner` any more. A scan of the
  // whole table, so debug builds only.
  TXCOORD_DCHECK(std::none_of(entries_.begin(), entries_.end(),
                              [&owner](const auto& e) {
                                return e.second.exclusive_owner == owner ||
                                       e.second.shared_owners.contains(owner);
                              }))
      << "txid=" << owner << " still holds locks after releasing them all";
  released_.SignalAll();
}

size_t LockTable::KeyCount() {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

size_t LockTable::HeldBy(const std::string& owner) {
  absl::MutexLock lock(&mu_);
  auto it = owned_.find(owner);
  return it == owned_.end() ? 0 : it->second.size();
}

}  // namespace txcoord::participant
