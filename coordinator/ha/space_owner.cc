#include "coordinator/ha/space_owner.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace txcoord::coordinator::ha {

using cluster::TxnCompare;
using cluster::TxnOp;

SpaceKeys SpaceKeys::For(const std::string& prefix, const std::string& space) {
  const std::string root = absl::StrCat(prefix, "/spaces/", space, "/");
  return SpaceKeys{root + "owner", root + "epoch", root + "log/"};
}

std::vector<TxnCompare> Ownership::Guard() const {
  return {TxnCompare{owner_key, TxnCompare::Target::kCreateRevision, fence}};
}

absl::StatusOr<std::optional<Ownership>> TryTakeSpace(cluster::Etcd* etcd, const SpaceKeys& keys,
                                                      const std::string& self, int64_t lease,
                                                      std::string* holder) {
  holder->clear();
  absl::StatusOr<cluster::RangeResult> epoch = etcd->Get(keys.epoch);
  if (!epoch.ok()) return epoch.status();
  uint64_t last = 0;
  int64_t epoch_revision = 0;
  if (!epoch->kvs.empty()) {
    if (!absl::SimpleAtoi(epoch->kvs[0].value, &last)) {
      return absl::DataLossError(
          absl::StrCat(keys.epoch, " holds \"", epoch->kvs[0].value, "\", not an epoch number"));
    }
    epoch_revision = epoch->kvs[0].mod_revision;
  }
  // Free, and no other process took it since the epoch was read.
  absl::StatusOr<cluster::TxnResult> taken =
      etcd->Txn({TxnCompare{keys.owner, TxnCompare::Target::kCreateRevision, 0},
                 TxnCompare{keys.epoch, TxnCompare::Target::kModRevision, epoch_revision}},
                {TxnOp{TxnOp::Type::kPut, keys.owner, self, lease},
                 TxnOp{TxnOp::Type::kPut, keys.epoch, absl::StrCat(last + 1), 0}});
  if (!taken.ok()) return taken.status();
  if (taken->succeeded) {
    Ownership ownership;
    ownership.lease = lease;
    ownership.fence = taken->revision;
    ownership.epoch = last + 1;
    ownership.owner_key = keys.owner;
    return ownership;
  }
  absl::StatusOr<cluster::RangeResult> owner = etcd->Get(keys.owner);
  if (!owner.ok()) return owner.status();
  if (owner->kvs.empty()) return std::nullopt;
  const cluster::KeyValue& held = owner->kvs[0];
  *holder = held.value;
  if (held.lease != lease || held.value != self) return std::nullopt;
  // Held under this very lease: an earlier attempt with it took the space
  // and its answer was lost (UNAVAILABLE, or the write was sent again to
  // another member and its own first try made the comparison fail). Not
  // seeing that would keep the space, under a lease the campaign renews,
  // with nobody serving it.
  absl::StatusOr<cluster::RangeResult> now = etcd->Get(keys.epoch);
  if (!now.ok()) return now.status();
  uint64_t taken_epoch = 0;
  if (now->kvs.empty() || now->kvs[0].mod_revision != held.create_revision ||
      !absl::SimpleAtoi(now->kvs[0].value, &taken_epoch)) {
    return std::nullopt;  // the take wrote both keys at one revision: not ours
  }
  Ownership ownership;
  ownership.lease = lease;
  ownership.fence = held.create_revision;
  ownership.epoch = taken_epoch;
  ownership.owner_key = keys.owner;
  return ownership;
}

absl::StatusOr<std::optional<Ownership>> CampaignRound(cluster::Etcd* etcd,
                                                       const CampaignOptions& options,
                                                       int64_t* lease, std::string* holder) {
  holder->clear();
  if (*lease != 0) {
    absl::StatusOr<absl::Duration> kept = etcd->KeepAlive(*lease);
    if (absl::IsNotFound(kept.status())) {
      *lease = 0;
    } else if (!kept.ok()) {
      return kept.status();
    }
  }
  if (*lease == 0) {
    absl::StatusOr<int64_t> granted = etcd->GrantLease(options.ttl);
    if (!granted.ok()) return granted.status();
    *lease = *granted;
  }
  return TryTakeSpace(etcd, options.keys, options.self, *lease, holder);
}

absl::StatusOr<Ownership> Campaign(cluster::Etcd* etcd, const CampaignOptions& options,
                                   const std::function<bool()>& should_stop) {
  absl::StatusOr<int64_t> lease = etcd->GrantLease(options.ttl);
  if (!lease.ok()) return lease.status();
  // Wakes the wait below when the owner key changes.
  absl::Mutex mu;
  bool changed = false;
  absl::StatusOr<std::unique_ptr<cluster::WatchHandle>> watch = etcd->WatchPrefix(
      options.keys.owner, 0,
      [&](const std::vector<cluster::WatchEvent>&, int64_t) {
        absl::MutexLock lock(&mu);
        changed = true;
      },
      [](const absl::Status&) {});  // the poll goes on
  std::string last_holder;
  bool first = true;
  bool in_outage = false;
  int64_t id = *lease;
  while (true) {
    std::string holder;
    absl::StatusOr<std::optional<Ownership>> taken = CampaignRound(etcd, options, &id, &holder);
    const absl::Status status = taken.status();
    if (!status.ok()) {
      if (first) return status;
      if (!in_outage) {
        TXLOG(WARNING) << "standby: " << status << "; retrying";
      }
      in_outage = true;
    } else if (taken->has_value()) {
      watch = absl::StatusOr<std::unique_ptr<cluster::WatchHandle>>(nullptr);  // stop it first
      return **taken;
    } else {
      in_outage = false;
      if (holder != last_holder && !holder.empty()) {
        TXLOG(INFO) << "standby: " << options.keys.owner << " is held by " << holder
                    << "; taking it over when that owner's lease ends (TTL "
                    << absl::FormatDuration(options.ttl) << ")";
        last_holder = holder;
      }
    }
    first = false;
    const absl::Time until = absl::Now() + options.poll;
    while (true) {
      if (should_stop()) {
        watch = absl::StatusOr<std::unique_ptr<cluster::WatchHandle>>(nullptr);
        etcd->RevokeLease(id).IgnoreError();
        return absl::CancelledError("stopped while a standby");
      }
      absl::MutexLock lock(&mu);
      const absl::Time step = std::min(until, absl::Now() + absl::Milliseconds(100));
      mu.AwaitWithDeadline(absl::Condition(&changed), step);
      if (changed || absl::Now() >= until) {
        changed = false;
        break;
      }
    }
  }
}

OwnershipKeeper::OwnershipKeeper(cluster::Etcd* etcd, Scheduler* scheduler, Ownership ownership,
                                 KeeperOptions options,
                                 std::function<void(const absl::Status&)> on_lost)
    : etcd_(etcd),
      ownership_(std::move(ownership)),
      options_(options),
      on_lost_(std::move(on_lost)),
      backoff_(options.min_backoff),
      renewed_at_(scheduler->Now()),
      scope_(scheduler) {
  scope_.After(options_.ttl / 3, [this] { Tick(); });
}

OwnershipKeeper::~OwnershipKeeper() { scope_.Close(); }

void OwnershipKeeper::Release() {
  scope_.Close();
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stats_->owner.store(false);
  if (absl::Status revoked = etcd_->RevokeLease(ownership_.lease); !revoked.ok()) {
    TXLOG(WARNING) << "ha: could not release " << ownership_.owner_key << ": " << revoked
                   << "; a standby takes it when the lease expires";
    return;
  }
  TXLOG(INFO) << "ha: released " << ownership_.owner_key << " (lease " << ownership_.lease
              << " revoked)";
}

absl::Status OwnershipKeeper::CheckFence() {
  absl::StatusOr<cluster::TxnResult> probe = etcd_->Txn(ownership_.Guard(), {});
  if (!probe.ok()) return probe.status();
  if (probe->succeeded) {
    return absl::InternalError(absl::StrCat("the lease of ", ownership_.owner_key,
                                            " is gone but its key is still this process's"));
  }
  stats_->fenced_writes.fetch_add(1);
  std::string holder = "nobody";
  if (absl::StatusOr<cluster::RangeResult> owner = etcd_->Get(ownership_.owner_key);
      owner.ok() && !owner->kvs.empty()) {
    holder = owner->kvs[0].value;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("lost ", ownership_.owner_key, " (epoch ", ownership_.epoch,
                   "): etcd refused a write fenced on revision ", ownership_.fence, " at revision ",
                   probe->revision, "; held now by ", holder));
}

void OwnershipKeeper::Tick() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
  }
  absl::StatusOr<absl::Duration> kept = etcd_->KeepAlive(ownership_.lease);
  if (kept.ok()) {
    if (warned_) {
      TXLOG(INFO) << "ha: lease of " << ownership_.owner_key << " renewed again";
    }
    warned_ = false;
    renewed_at_ = scope_.Now();
    backoff_ = options_.min_backoff;
    scope_.After(options_.ttl / 3, [this] { Tick(); });
    return;
  }
  stats_->keepalive_failures.fetch_add(1);
  if (absl::IsNotFound(kept.status())) {
    const absl::Status fence = CheckFence();
    if (absl::IsFailedPrecondition(fence)) {
      {
        absl::MutexLock lock(&mu_);
        stopped_ = true;
      }
      stats_->owner.store(false);
      TXLOG(ERROR) << "ha: " << fence;
      on_lost_(fence);
      return;
    }
    if (!fence.ok()) {
      TXLOG(WARNING) << "ha: " << fence;
    }
  } else if (!warned_ && scope_.Now() - renewed_at_ >= options_.ttl) {
    warned_ = true;
    TXLOG(WARNING) << "ha: lease " << ownership_.lease << " of " << ownership_.owner_key
                   << " not renewed for " << absl::FormatDuration(scope_.Now() - renewed_at_)
                   << ": " << kept.status() << "; writes for the space wait on the fence";
  }
  const absl::Duration wait = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.ttl / 3);
  scope_.After(wait, [this] { Tick(); });
}

void OwnershipKeeper::AddMetrics(MetricsRegistry* registry) {
  registry->AddGauge("txcoord_ha_owner",
                     "1 while this coordinator owns its txid space in etcd (--log=etcd).",
                     [stats = stats_] { return stats->owner.load() ? 1.0 : 0.0; });
  registry->AddCounterFunction(
      "txcoord_ha_keepalive_failures_total",
      "Failed renewals of the lease that holds this coordinator's txid space.",
      [stats = stats_] { return static_cast<double>(stats->keepalive_failures.load()); });
  registry->AddCounterFunction(
      "txcoord_ha_fenced_writes_total",
      "Writes for this coordinator's txid space that etcd refused because another process "
      "owns the space now.",
      [stats = stats_] { return static_cast<double>(stats->fenced_writes.load()); });
}

}  // namespace txcoord::coordinator::ha
