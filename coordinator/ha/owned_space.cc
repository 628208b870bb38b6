#include "coordinator/ha/owned_space.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/txid.h"

ABSL_FLAG(absl::Duration, etcd_compaction_interval, absl::Minutes(5),
          "With --log=etcd: how often the owner of the txid space compacts etcd's history "
          "(keeping one to two intervals of it), so that the rewritten and deleted keys of the "
          "decision log never fill etcd's space quota. 0: leave it to etcd's own "
          "--auto-compaction-retention.");

namespace txcoord::coordinator::ha {
namespace {

// Nothing may be decided or answered for the space from here on: the new
// owner drives its transactions. Exiting at once is the only safe stop.
[[noreturn]] void LostSpace(const absl::Status& status) {
  TXLOG(ERROR) << "lost the txid space: " << status << "; stopping now (exit status "
               << kLostSpaceExitCode << "); its new owner drives its transactions";
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(kLostSpaceExitCode);
}

}  // namespace

absl::StatusOr<std::unique_ptr<OwnedSpace>> OwnedSpace::OpenFromFlags(
    const std::string& space, const std::string& self, RecoveryState* recovery,
    MetricsRegistry* metrics, const std::function<bool()>& should_stop) {
  absl::StatusOr<cluster::RegistryOptions> options = cluster::RegistryOptionsFromFlags();
  if (!options.ok()) return options.status();
  if (options->url.empty()) {
    return absl::InvalidArgumentError(
        "--log=etcd needs --registry=etcd://HOST:PORT[,...]: the etcd that holds the decisions");
  }
  if (space.empty() || !IsValidName(space, /*allow_dot=*/false)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--log=etcd needs --cluster_id, the txid space this process owns or stands by for "
        "([A-Za-z0-9_-]); got \"",
        space, "\""));
  }
  if (absl::GetFlag(FLAGS_etcd_compaction_interval) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--etcd_compaction_interval must not be negative");
  }
  if (options->ttl < absl::Seconds(2)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--log=etcd needs --registry_ttl of at least 2s (etcd's shortest lease), "
                     "not ",
                     absl::FormatDuration(options->ttl)));
  }
  absl::StatusOr<std::unique_ptr<cluster::RegistryConnection>> registry =
      cluster::RegistryConnection::Open(*options);
  if (!registry.ok()) return registry.status();

  std::unique_ptr<OwnedSpace> owned(new OwnedSpace());
  owned->space_ = space;
  owned->registry_ = *std::move(registry);
  cluster::Etcd* etcd = owned->registry_->etcd();
  CampaignOptions campaign;
  campaign.keys = SpaceKeys::For(options->prefix, space);
  campaign.self = self;
  campaign.ttl = options->ttl;
  TXLOG(INFO) << "taking txid space " << space << " in " << etcd->Describe() << " ("
              << campaign.keys.owner << ")";
  absl::StatusOr<Ownership> ownership = Campaign(etcd, campaign, should_stop);
  if (!ownership.ok()) {
    return absl::Status(ownership.status().code(),
                        absl::StrCat("taking txid space ", space, " in ", etcd->Describe(), ": ",
                                     ownership.status().message()));
  }
  owned->ownership_ = *ownership;
  // From here the space is this process's: a failure below lets the lease
  // expire, and a standby (or this process, restarted) takes it again.
  owned->keeper_ = std::make_unique<OwnershipKeeper>(etcd, &owned->keeper_timers_, *ownership,
                                                     KeeperOptions{options->ttl}, LostSpace);
  if (metrics != nullptr) owned->keeper_->AddMetrics(metrics);
  size_t keys = 0;
  if (absl::Status loaded = LoadDecisions(etcd, campaign.keys, recovery, &keys); !loaded.ok()) {
    return loaded;
  }
  EtcdLogOptions log_options;
  log_options.keys = campaign.keys;
  log_options.ownership = *ownership;
  owned->log_ = std::make_unique<EtcdDecisionLog>(
      etcd, &owned->log_timers_, log_options, *recovery,
      [keeper = owned->keeper_.get()](const absl::Status& status) {
        if (absl::IsFailedPrecondition(status)) keeper->CountFencedWrite();
        LostSpace(status);
      });
  const absl::Duration compaction = absl::GetFlag(FLAGS_etcd_compaction_interval);
  if (compaction > absl::ZeroDuration()) {
    owned->compactor_ =
        std::make_unique<cluster::HistoryCompactor>(etcd, &owned->compactor_timers_, compaction);
    if (metrics != nullptr) owned->compactor_->AddMetrics(metrics);
  }
  TXLOG(INFO) << "took txid space " << space << " as epoch " << ownership->epoch << " ("
              << owned->describe() << "); read " << keys << " key(s) of its decision log";
  return owned;
}

OwnedSpace::~OwnedSpace() {
  compactor_.reset();
  log_.reset();
  keeper_.reset();
}

std::string OwnedSpace::describe() const {
  return absl::StrCat(registry_->etcd()->Describe(), " key ", ownership_.owner_key, " (lease ",
                      ownership_.lease, ", fence ", ownership_.fence, ")");
}

absl::Status OwnedSpace::Register(const cluster::NodeRecord& record, MetricsRegistry* metrics) {
  if (absl::Status registered = registry_->Register(record, ownership_.Guard(), LostSpace);
      !registered.ok()) {
    return absl::Status(registered.code(),
                        absl::StrCat("registering in etcd: ", registered.message()));
  }
  if (metrics != nullptr) registry_->AddMetrics(metrics);
  return absl::OkStatus();
}

void OwnedSpace::Close() {
  if (log_ != nullptr) log_->Close();
  if (keeper_ != nullptr) keeper_->Release();
}

}  // namespace txcoord::coordinator::ha
