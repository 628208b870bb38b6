#include "cluster/registrar.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace txcoord::cluster {

Registrar::Registrar(Etcd* etcd, Scheduler* scheduler, NodeRecord record, RegistrarOptions options)
    : etcd_(etcd),
      options_(std::move(options)),
      key_(NodeKey(options_.prefix, record.role, record.service, record.node_id)),
      renew_every_(std::max(absl::Milliseconds(100), options_.ttl / 3)),
      scope_(scheduler),
      record_(std::move(record)),
      backoff_(options_.min_backoff),
      jitter_(std::hash<std::string>()(key_)) {}

Registrar::~Registrar() { Stop(); }

absl::Status Registrar::RegisterLocked() {
  absl::StatusOr<int64_t> lease = etcd_->GrantLease(options_.ttl);
  if (!lease.ok()) return lease.status();
  absl::StatusOr<int64_t> put = etcd_->Put(key_, record_.ToJson(), *lease);
  if (!put.ok()) {
    (void)etcd_->RevokeLease(*lease);
    return put.status();
  }
  lease_ = *lease;
  registered_ = true;
  registrations_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Registrar::Start() {
  absl::MutexLock lock(&mu_);
  if (registered_ || stopped_) return absl::FailedPreconditionError("registrar already started");
  if (absl::Status status = RegisterLocked(); !status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("cannot register ", key_, ": ", status.message()));
  }
  scope_.After(renew_every_, [this] { Tick(); });
  return absl::OkStatus();
}

void Registrar::RetryLater(const absl::Status& status) {
  keepalive_failures_.fetch_add(1, std::memory_order_relaxed);
  if (!in_outage_) {
    in_outage_ = true;
    TXLOG(WARNING) << "registry: cannot renew " << key_ << " (lease " << lease_ << "): " << status
                   << "; retrying with backoff";
  }
  // Half to all of the backoff: daemons that lost etcd together do not
  // come back together.
  const absl::Duration pause = backoff_ * std::uniform_real_distribution<double>(0.5, 1.0)(jitter_);
  backoff_ = std::min(backoff_ * 2, renew_every_);
  scope_.After(pause, [this] { Tick(); });
}

void Registrar::Tick() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  if (lease_ != 0) {
    absl::StatusOr<absl::Duration> renewed = etcd_->KeepAlive(lease_);
    if (renewed.ok()) {
      if (in_outage_) {
        TXLOG(INFO) << "registry: " << key_ << " renewed again (lease " << lease_ << ")";
        in_outage_ = false;
      }
      backoff_ = options_.min_backoff;
      scope_.After(renew_every_, [this] { Tick(); });
      return;
    }
    if (!absl::IsNotFound(renewed.status())) return RetryLater(renewed.status());
    // etcd was away (or this process paused) longer than the TTL: the
    // record went with the lease.
    TXLOG(WARNING) << "registry: lease " << lease_ << " of " << key_
                   << " expired; registering again";
    lease_ = 0;
    registered_ = false;
  }
  if (absl::Status status = RegisterLocked(); !status.ok()) return RetryLater(status);
  TXLOG(INFO) << "registry: registered " << key_ << " again (lease " << lease_ << ")";
  in_outage_ = false;
  backoff_ = options_.min_backoff;
  scope_.After(renew_every_, [this] { Tick(); });
}

absl::Status Registrar::SetDraining(bool draining) {
  absl::MutexLock lock(&mu_);
  record_.draining = draining;
  if (!registered_) return absl::OkStatus();  // the next registration carries it
  absl::StatusOr<int64_t> put = etcd_->Put(key_, record_.ToJson(), lease_);
  return put.ok() ? absl::OkStatus() : put.status();
}

void Registrar::Stop() {
  scope_.Close();  // no Tick runs after this
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;
  if (lease_ != 0) {
    // Best effort: if etcd is away, the lease expires by itself.
    if (absl::Status revoked = etcd_->RevokeLease(lease_); !revoked.ok()) {
      TXLOG(WARNING) << "registry: cannot revoke lease " << lease_ << " of " << key_ << ": "
                     << revoked << "; the record goes when the lease expires";
    }
  }
  lease_ = 0;
  registered_ = false;
}

bool Registrar::registered() {
  absl::MutexLock lock(&mu_);
  return registered_;
}

int64_t Registrar::lease() {
  absl::MutexLock lock(&mu_);
  return lease_;
}

void Registrar::AddMetrics(MetricsRegistry* registry) {
  registry->AddGauge("txcoord_registry_registered",
                     "1 while this process's record is in etcd as far as it knows.",
                     [this] { return registered() ? 1.0 : 0.0; });
  registry->AddCounterFunction(
      "txcoord_registry_keepalive_failures_total",
      "Failed renewals of this process's registry lease (etcd unreachable or slow).",
      [this] { return static_cast<double>(keepalive_failures_.load()); });
  registry->AddCounterFunction(
      "txcoord_registry_registrations_total",
      "Registrations of this process's record: 1, plus one per lease lost and granted again.",
      [this] { return static_cast<double>(registrations_.load()); });
}

}  // namespace txcoord::cluster
