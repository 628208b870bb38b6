#include "cluster/memory_etcd.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace txcoord::cluster {

struct MemoryEtcd::Watcher {
  std::string prefix;
  EventsFn on_events;
  ErrorFn on_error;
  absl::Mutex mu;  // held while a callback runs, and to stop
  bool stopped ABSL_GUARDED_BY(mu) = false;
};

class MemoryEtcd::Handle final : public WatchHandle {
 public:
  Handle(MemoryEtcd* etcd, std::shared_ptr<Watcher> watcher)
      : etcd_(etcd), watcher_(std::move(watcher)) {}
  ~Handle() override {
    {
      absl::MutexLock lock(&watcher_->mu);
      watcher_->stopped = true;
    }
    absl::MutexLock lock(&etcd_->mu_);
    auto& all = etcd_->watchers_;
    all.erase(std::remove(all.begin(), all.end(), watcher_), all.end());
  }

 private:
  MemoryEtcd* const etcd_;
  const std::shared_ptr<Watcher> watcher_;
};

MemoryEtcd::MemoryEtcd(Scheduler* scheduler) : scheduler_(scheduler) {}

MemoryEtcd::~MemoryEtcd() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, lease] : leases_) scheduler_->Cancel(lease.timer);
}

void MemoryEtcd::SetAvailable(bool available) {
  std::vector<std::shared_ptr<Watcher>> failed;
  {
    absl::MutexLock lock(&mu_);
    available_ = available;
    if (!available) failed.swap(watchers_);
  }
  for (auto& watcher : failed) Fail(watcher, absl::UnavailableError("etcd in memory: unavailable"));
}

void MemoryEtcd::SetSpaceExceeded(bool exceeded) {
  absl::MutexLock lock(&mu_);
  space_exceeded_ = exceeded;
}

absl::Status MemoryEtcd::Compact(int64_t revision) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  if (revision <= compacted_) {
    return absl::OutOfRangeError(
        absl::StrCat("etcd in memory: revision ", revision, " has been compacted"));
  }
  if (revision > revision_) {
    return absl::OutOfRangeError(
        absl::StrCat("etcd in memory: revision ", revision, " is a future revision"));
  }
  compacted_ = revision;
  // A copy: clang cannot see that the lambda runs under mu_.
  const int64_t compacted = compacted_;
  history_.erase(
      std::remove_if(history_.begin(), history_.end(),
                     [compacted](const WatchEvent& e) { return e.kv.mod_revision < compacted; }),
      history_.end());
  return absl::OkStatus();
}

int64_t MemoryEtcd::revision() {
  absl::MutexLock lock(&mu_);
  return revision_;
}

absl::Status MemoryEtcd::CheckAvailable() {
  if (!available_) return absl::UnavailableError("etcd unreachable at etcd in memory: unavailable");
  return absl::OkStatus();
}

absl::Status MemoryEtcd::CheckSpace() {
  if (space_exceeded_) {
    return absl::ResourceExhaustedError("etcd in memory: mvcc: database space exceeded");
  }
  return absl::OkStatus();
}

absl::StatusOr<RangeResult> MemoryEtcd::Get(const std::string& key, int64_t revision) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  RangeResult result;
  result.revision = revision_;
  if (revision == 0 || revision >= revision_) {
    if (auto it = keys_.find(key); it != keys_.end()) result.kvs.push_back(it->second);
    return result;
  }
  if (revision < compacted_) {
    return absl::OutOfRangeError(absl::StrCat("etcd in memory: revision ", revision,
                                              " has been compacted (compacted to ", compacted_,
                                              ")"));
  }
  // The latest change to `key` at or before `revision`.
  for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
    if (it->kv.key != key || it->kv.mod_revision > revision) continue;
    if (it->type == WatchEvent::Type::kPut) result.kvs.push_back(it->kv);
    break;
  }
  return result;
}

absl::StatusOr<RangeResult> MemoryEtcd::GetPrefix(const std::string& prefix) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  RangeResult result;
  result.revision = revision_;
  for (auto it = keys_.lower_bound(prefix);
       it != keys_.end() && absl::StartsWith(it->first, prefix); ++it) {
    result.kvs.push_back(it->second);
  }
  return result;
}

absl::StatusOr<int64_t> MemoryEtcd::PutLocked(const std::string& key, const std::string& value,
                                              int64_t lease) {
  if (lease != 0 && leases_.count(lease) == 0) {
    return absl::NotFoundError(absl::StrCat("etcd in memory: lease ", lease, " not found"));
  }
  PutAt(key, value, lease, ++revision_);
  return revision_;
}

void MemoryEtcd::PutAt(const std::string& key, const std::string& value, int64_t lease,
                       int64_t revision) {
  KeyValue& kv = keys_[key];
  if (kv.version == 0) {
    kv.key = key;
    kv.create_revision = revision;
  }
  kv.value = value;
  kv.mod_revision = revision;
  ++kv.version;
  kv.lease = lease;
  Publish(WatchEvent{WatchEvent::Type::kPut, kv});
}

int64_t MemoryEtcd::DeleteLocked(const std::string& key) {
  if (keys_.count(key) == 0) return 0;
  DeleteAt(key, ++revision_);
  return 1;
}

bool MemoryEtcd::DeleteAt(const std::string& key, int64_t revision) {
  if (keys_.erase(key) == 0) return false;
  WatchEvent event{WatchEvent::Type::kDelete, {}};
  event.kv.key = key;
  event.kv.mod_revision = revision;
  Publish(event);
  return true;
}

absl::StatusOr<int64_t> MemoryEtcd::Put(const std::string& key, const std::string& value,
                                        int64_t lease) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  if (absl::Status s = CheckSpace(); !s.ok()) return s;
  return PutLocked(key, value, lease);
}

absl::StatusOr<bool> MemoryEtcd::PutIf(const std::string& key, const std::string& value,
                                       int64_t expected_mod_revision, int64_t lease) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  if (absl::Status s = CheckSpace(); !s.ok()) return s;
  auto it = keys_.find(key);
  const int64_t current = it == keys_.end() ? 0 : it->second.mod_revision;
  if (current != expected_mod_revision) return false;
  absl::StatusOr<int64_t> put = PutLocked(key, value, lease);
  if (!put.ok()) return put.status();
  return true;
}

namespace {

absl::Status DuplicateKey(const std::string& key) {
  return absl::InvalidArgumentError(
      absl::StrCat("etcd in memory: duplicate key given in txn request (", key, ")"));
}

}  // namespace

absl::StatusOr<TxnResult> MemoryEtcd::Txn(const std::vector<TxnCompare>& compares,
                                          const std::vector<TxnOp>& writes) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  if (writes.size() > 128) {
    return absl::InvalidArgumentError("etcd in memory: too many operations in txn request");
  }
  // As etcd, before comparing: a key put twice, or put and covered by one
  // of the deletes, makes the request invalid (deletes may overlap).
  std::set<std::string> puts;
  for (const TxnOp& op : writes) {
    if (op.type == TxnOp::Type::kPut && !puts.insert(op.key).second) return DuplicateKey(op.key);
  }
  for (const TxnOp& op : writes) {
    if (op.type == TxnOp::Type::kDelete && puts.count(op.key) != 0) return DuplicateKey(op.key);
    if (op.type != TxnOp::Type::kDeletePrefix) continue;
    auto it = puts.lower_bound(op.key);
    if (it != puts.end() && absl::StartsWith(*it, op.key)) return DuplicateKey(*it);
  }
  if (!puts.empty()) {
    if (absl::Status s = CheckSpace(); !s.ok()) return s;
  }
  for (const TxnOp& op : writes) {
    if (op.type == TxnOp::Type::kPut && op.lease != 0 && leases_.count(op.lease) == 0) {
      return absl::NotFoundError(absl::StrCat("etcd in memory: lease ", op.lease, " not found"));
    }
  }
  TxnResult result;
  for (const TxnCompare& compare : compares) {
    auto it = keys_.find(compare.key);
    int64_t actual = 0;
    if (it != keys_.end()) {
      actual = compare.target == TxnCompare::Target::kCreateRevision ? it->second.create_revision
                                                                     : it->second.mod_revision;
    }
    if (actual != compare.revision) {
      result.revision = revision_;
      return result;
    }
  }
  result.succeeded = true;
  // etcd advances the revision only for a transaction that changed a key.
  const int64_t revision = revision_ + 1;
  bool changed = false;
  for (const TxnOp& op : writes) {
    switch (op.type) {
      case TxnOp::Type::kPut:
        PutAt(op.key, op.value, op.lease, revision);
        changed = true;
        break;
      case TxnOp::Type::kDelete:
        changed |= DeleteAt(op.key, revision);
        break;
      case TxnOp::Type::kDeletePrefix: {
        std::vector<std::string> matched;
        for (auto it = keys_.lower_bound(op.key);
             it != keys_.end() && absl::StartsWith(it->first, op.key); ++it) {
          matched.push_back(it->first);
        }
        for (const std::string& key : matched) changed |= DeleteAt(key, revision);
        break;
      }
    }
  }
  if (changed) revision_ = revision;
  result.revision = revision_;
  return result;
}

absl::StatusOr<int64_t> MemoryEtcd::Delete(const std::string& key) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  return DeleteLocked(key);
}

void MemoryEtcd::ArmExpiry(int64_t id, Lease& lease) {
  if (lease.timer != 0) scheduler_->Cancel(lease.timer);
  lease.expires = scheduler_->Now() + lease.ttl;
  lease.timer = scheduler_->Schedule(lease.expires, [this, id] { Expire(id); });
}

void MemoryEtcd::Expire(int64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = leases_.find(id);
  if (it == leases_.end() || it->second.expires > scheduler_->Now()) return;
  leases_.erase(it);
  std::vector<std::string> owned;
  for (const auto& [key, kv] : keys_) {
    if (kv.lease == id) owned.push_back(key);
  }
  for (const std::string& key : owned) DeleteLocked(key);
}

absl::StatusOr<int64_t> MemoryEtcd::GrantLease(absl::Duration ttl) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  if (absl::Status s = CheckSpace(); !s.ok()) return s;
  const int64_t id = next_lease_++;
  Lease& lease = leases_[id];
  lease.ttl = std::max(absl::Seconds(1), absl::Ceil(ttl, absl::Seconds(1)));
  ArmExpiry(id, lease);
  return id;
}

absl::StatusOr<absl::Duration> MemoryEtcd::KeepAlive(int64_t lease) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  auto it = leases_.find(lease);
  if (it == leases_.end() || it->second.expires <= scheduler_->Now()) {
    return absl::NotFoundError(absl::StrCat("etcd in memory: lease ", lease, " not found"));
  }
  ArmExpiry(lease, it->second);
  return it->second.ttl;
}

absl::Status MemoryEtcd::RevokeLease(int64_t lease) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  auto it = leases_.find(lease);
  if (it == leases_.end()) return absl::OkStatus();
  scheduler_->Cancel(it->second.timer);
  leases_.erase(it);
  std::vector<std::string> owned;
  for (const auto& [key, kv] : keys_) {
    if (kv.lease == lease) owned.push_back(key);
  }
  for (const std::string& key : owned) DeleteLocked(key);
  return absl::OkStatus();
}

void MemoryEtcd::Publish(const WatchEvent& event) {
  history_.push_back(event);
  for (const std::shared_ptr<Watcher>& watcher : watchers_) {
    if (!absl::StartsWith(event.kv.key, watcher->prefix)) continue;
    scheduler_->After(absl::ZeroDuration(),
                      [watcher, event] { Deliver(watcher, {event}, event.kv.mod_revision); });
  }
}

void MemoryEtcd::Deliver(std::shared_ptr<Watcher> watcher, std::vector<WatchEvent> events,
                         int64_t revision) {
  absl::MutexLock lock(&watcher->mu);
  if (watcher->stopped) return;
  watcher->on_events(events, revision);
}

void MemoryEtcd::Fail(std::shared_ptr<Watcher> watcher, absl::Status status) {
  scheduler_->After(absl::ZeroDuration(), [watcher, status] {
    absl::MutexLock lock(&watcher->mu);
    if (watcher->stopped) return;
    watcher->stopped = true;
    watcher->on_error(status);
  });
}

absl::StatusOr<std::unique_ptr<WatchHandle>> MemoryEtcd::WatchPrefix(const std::string& prefix,
                                                                     int64_t start_revision,
                                                                     EventsFn on_events,
                                                                     ErrorFn on_error) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckAvailable(); !s.ok()) return s;
  auto watcher = std::make_shared<Watcher>();
  watcher->prefix = prefix;
  watcher->on_events = std::move(on_events);
  watcher->on_error = std::move(on_error);
  if (start_revision != 0 && start_revision < compacted_) {
    Fail(watcher, absl::OutOfRangeError(absl::StrCat("etcd in memory: revision ", start_revision,
                                                     " has been compacted (compacted to ",
                                                     compacted_, ")")));
  } else if (start_revision != 0) {
    for (const WatchEvent& event : history_) {
      if (event.kv.mod_revision < start_revision || !absl::StartsWith(event.kv.key, prefix)) {
        continue;
      }
      scheduler_->After(absl::ZeroDuration(),
                        [watcher, event] { Deliver(watcher, {event}, event.kv.mod_revision); });
    }
    watchers_.push_back(watcher);
  } else {
    watchers_.push_back(watcher);
  }
  return std::make_unique<Handle>(this, watcher);
}

}  // namespace txcoord::cluster
