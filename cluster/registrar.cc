#include "cluster/registrar.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/metrics.h"

namespace txcoord::cluster {
namespace {

absl::Status Annotate(const absl::Status& status, absl::string_view what) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

}  // namespace

Registrar::Registrar(Etcd* etcd, Scheduler* scheduler, NodeRecord record, RegistrarOptions options)
    : etcd_(etcd),
      scheduler_(scheduler),
      options_(std::move(options)),
      key_(NodeKey(options_.prefix, record.role, record.service, record.node_id)),
      renew_every_(std::max(options_.ttl / 3, absl::Milliseconds(1))) {
  absl::MutexLock loop(&loop_mu_);
  record_ = std::move(record);
  backoff_ = FirstBackoff();
  lease_ttl_ = options_.ttl;
  // Deterministic per node (the simulator replays runs), different between nodes.
  jitter_.seed(std::hash<std::string>{}(key_));
}

Registrar::~Registrar() { Stop(); }

absl::Status Registrar::Start() {
  absl::MutexLock loop(&loop_mu_);
  if (stopped_)
    return absl::FailedPreconditionError(absl::StrCat("registrar of ", key_, " stopped"));
  if (started_) {
    return absl::FailedPreconditionError(absl::StrCat("registrar of ", key_, " already started"));
  }
  const std::string where = absl::StrCat("cannot register ", key_, " in ", etcd_->Describe());
  absl::StatusOr<int64_t> lease = etcd_->GrantLease(options_.ttl);
  if (!lease.ok()) return Annotate(lease.status(), absl::StrCat(where, ": granting a lease"));
  if (absl::Status put = Write(*lease); !put.ok()) {
    // Best effort: the lease would expire by itself anyway.
    etcd_->RevokeLease(*lease).IgnoreError();
    return Annotate(put, absl::StrCat(where, ": writing the record"));
  }
  started_ = true;
  dirty_ = false;
  renewed_at_ = scheduler_->Now();
  SetLease(*lease, /*registered=*/true);
  stats_->registrations.fetch_add(1);
  TXLOG(INFO) << "registry: registered " << key_ << " in " << etcd_->Describe() << " (lease "
              << *lease << ", ttl " << absl::FormatDuration(options_.ttl) << ", "
              << (record_.draining ? "draining" : "serving") << ")";
  ScheduleTick(renew_every_);
  return absl::OkStatus();
}

absl::Status Registrar::SetDraining(bool draining) {
  absl::MutexLock loop(&loop_mu_);
  if (stopped_)
    return absl::FailedPreconditionError(absl::StrCat("registrar of ", key_, " stopped"));
  const char* state = draining ? "draining" : "serving";
  record_.draining = draining;
  if (!started_) return absl::OkStatus();  // Start writes it
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    if (registered_) lease = lease_;
  }
  if (lease == 0) {
    dirty_ = true;
    return absl::UnavailableError(absl::StrCat(key_, " is not registered in ", etcd_->Describe(),
                                               " now; it will say ", state,
                                               " once registered again"));
  }
  if (absl::Status status = PutRecord(lease); !status.ok()) {
    return Annotate(status, absl::StrCat("cannot mark ", key_, " ", state, " in ",
                                         etcd_->Describe(), " (retried in the background)"));
  }
  TXLOG(INFO) << "registry: " << key_ << " now " << state;
  return absl::OkStatus();
}

void Registrar::Stop() {
  // Waits for a loop step that is running; none starts after this.
  gate_->Close();
  absl::MutexLock loop(&loop_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (timer_ != 0) scheduler_->Cancel(timer_);
  timer_ = 0;
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_;
  }
  SetLease(0, /*registered=*/false);
  if (lease == 0) return;
  // One attempt: shutting down must not wait for an etcd that is away. The
  // record then stays until its lease expires.
  if (absl::Status status = etcd_->RevokeLease(lease); !status.ok()) {
    TXLOG(WARNING) << "registry: could not revoke lease " << lease << " of " << key_ << " in "
                   << etcd_->Describe() << ": " << status << "; the record stays until the lease"
                   << " expires (within " << absl::FormatDuration(lease_ttl_) << ")";
    return;
  }
  TXLOG(INFO) << "registry: deregistered " << key_ << " (lease " << lease << " revoked)";
}

bool Registrar::registered() {
  absl::MutexLock lock(&mu_);
  return registered_ && !stale_;
}

int64_t Registrar::lease() {
  absl::MutexLock lock(&mu_);
  return lease_;
}

void Registrar::AddMetrics(MetricsRegistry* registry) {
  registry->AddGauge(
      "txcoord_registry_registered",
      "1 while this process's record is in etcd under a lease renewed within its TTL, as far as "
      "the process knows.",
      [stats = stats_] { return stats->registered.load() ? 1.0 : 0.0; });
  registry->AddCounterFunction(
      "txcoord_registry_keepalive_failures_total",
      "Failed attempts to renew this process's lease in etcd or to register again, and leases "
      "found expired.",
      [stats = stats_] { return static_cast<double>(stats->keepalive_failures.load()); });
  registry->AddCounterFunction(
      "txcoord_registry_registrations_total",
      "Times this process put its record in etcd under a new lease: once at start, then once "
      "for each lease lost (etcd unreachable longer than the TTL).",
      [stats = stats_] { return static_cast<double>(stats->registrations.load()); });
}

void Registrar::Tick() {
  timer_ = 0;
  if (stopped_) return;
  const absl::Status status = Step();
  if (status.ok()) {
    if (in_outage_) {
      TXLOG(INFO) << "registry: " << key_ << " kept in " << etcd_->Describe() << " again after "
                  << outage_failures_ << " failed attempt(s)";
    }
    in_outage_ = false;
    outage_failures_ = 0;
    backoff_ = FirstBackoff();
    ScheduleTick(renew_every_);
    return;
  }
  stats_->keepalive_failures.fetch_add(1);
  if (fenced_) {
    TXLOG(ERROR) << "registry: " << status << "; the registration loop stops";
    SetLease(0, /*registered=*/false);
    if (options_.on_fenced) options_.on_fenced(status);
    return;
  }
  ++outage_failures_;
  if (!in_outage_) {
    in_outage_ = true;
    TXLOG(WARNING) << "registry: cannot keep " << key_ << " in " << etcd_->Describe() << ": "
                   << status << "; retrying every " << absl::FormatDuration(renew_every_)
                   << " at most";
  }
  // Not renewed for a whole TTL: the lease has most likely expired.
  if (scheduler_->Now() - renewed_at_ >= lease_ttl_) {
    absl::MutexLock lock(&mu_);
    stale_ = true;
    stats_->registered.store(false);
  }
  ScheduleTick(NextBackoff());
}

absl::Status Registrar::Step() {
  int64_t lease = 0;
  bool registered = false;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_;
    registered = registered_;
  }
  if (lease != 0) {
    absl::StatusOr<absl::Duration> ttl = etcd_->KeepAlive(lease);
    if (ttl.ok()) {
      renewed_at_ = scheduler_->Now();
      lease_ttl_ = *ttl;
      {
        absl::MutexLock lock(&mu_);
        stale_ = false;
        stats_->registered.store(registered_);
      }
      if (registered && !dirty_) return absl::OkStatus();
    } else if (absl::IsNotFound(ttl.status())) {
      stats_->keepalive_failures.fetch_add(1);
      TXLOG(WARNING) << "registry: lease " << lease << " of " << key_ << " is gone from "
                     << etcd_->Describe() << " (unreachable for longer than its TTL?): "
                     << "registering again";
      SetLease(0, /*registered=*/false);
      lease = 0;
      registered = false;
    } else {
      return Annotate(ttl.status(), absl::StrCat("renewing lease ", lease));
    }
  }
  if (lease == 0) {
    absl::StatusOr<int64_t> granted = etcd_->GrantLease(options_.ttl);
    if (!granted.ok()) return Annotate(granted.status(), "granting a lease");
    lease = *granted;
    renewed_at_ = scheduler_->Now();
    SetLease(lease, /*registered=*/false);
  }
  if (absl::Status status = PutRecord(lease); !status.ok()) return status;
  if (!registered) {
    stats_->registrations.fetch_add(1);
    TXLOG(INFO) << "registry: registered " << key_ << " again in " << etcd_->Describe()
                << " (lease " << lease << ")";
  }
  return absl::OkStatus();
}

absl::Status Registrar::Write(int64_t lease) {
  if (fenced_) {
    return absl::FailedPreconditionError(
        absl::StrCat("the guard of ", key_, " failed: not written again"));
  }
  if (options_.guard.empty()) return etcd_->Put(key_, record_.ToJson(), lease).status();
  absl::StatusOr<TxnResult> written =
      etcd_->Txn(options_.guard, {TxnOp{TxnOp::Type::kPut, key_, record_.ToJson(), lease}});
  if (!written.ok()) return written.status();
  if (!written->succeeded) {
    fenced_ = true;
    return absl::FailedPreconditionError(absl::StrCat(
        "the guard of ", key_, " failed at revision ", written->revision,
        " (this process no longer owns what the record stands for): not written again"));
  }
  return absl::OkStatus();
}

absl::Status Registrar::PutRecord(int64_t lease) {
  if (absl::Status put = Write(lease); !put.ok()) {
    // The write may still have happened (etcd.h): written again later.
    dirty_ = true;
    if (absl::IsNotFound(put)) SetLease(0, /*registered=*/false);
    return Annotate(put, absl::StrCat("writing ", key_));
  }
  dirty_ = false;
  SetLease(lease, /*registered=*/true);
  return absl::OkStatus();
}

void Registrar::ScheduleTick(absl::Duration delay) {
  timer_ = scheduler_->After(delay, [gate = gate_, this] {
    gate->Run([this] {
      absl::MutexLock loop(&loop_mu_);
      Tick();
    });
  });
}

absl::Duration Registrar::FirstBackoff() const {
  // Never zero: a retry loop with no wait would spin against etcd.
  return std::clamp(options_.min_backoff, absl::Milliseconds(1), renew_every_);
}

absl::Duration Registrar::NextBackoff() {
  const absl::Duration current = backoff_;
  backoff_ = std::min(backoff_ * 2, renew_every_);
  const int64_t half = absl::ToInt64Microseconds(current) / 2;
  std::uniform_int_distribution<int64_t> spread(0, std::max<int64_t>(half, 0));
  return absl::Microseconds(half + spread(jitter_));
}

void Registrar::SetLease(int64_t lease, bool registered) {
  absl::MutexLock lock(&mu_);
  lease_ = lease;
  registered_ = registered;
  if (registered) stale_ = false;
  stats_->registered.store(registered_ && !stale_);
}

}  // namespace txcoord::cluster
