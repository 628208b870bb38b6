#include "cluster/registry_connection.h"

#include <unistd.h>

#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cluster/cluster_flags.h"
#include "cluster/etcd_client.h"
#include "common/logging.h"

namespace txcoord::cluster {

absl::StatusOr<RegistryOptions> RegistryOptionsFromFlags() {
  RegistryOptions options;
  options.url = absl::GetFlag(FLAGS_registry);
  options.prefix = absl::GetFlag(FLAGS_registry_prefix);
  options.ttl = absl::GetFlag(FLAGS_registry_ttl);
  if (options.prefix.empty() || options.prefix[0] != '/' || options.prefix.back() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("--registry_prefix \"", options.prefix,
                                                   "\" must start with / and not end with one"));
  }
  if (options.ttl < absl::Seconds(1) || options.ttl > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--registry_ttl ", absl::FormatDuration(options.ttl), " is outside [1s, 1h]"));
  }
  if (!options.url.empty()) {
    if (absl::StatusOr<std::vector<std::string>> endpoints = ParseRegistryUrl(options.url);
        !endpoints.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--registry: ", endpoints.status().message()));
    }
  }
  return options;
}

const char* TxcoordVersion() { return TXCOORD_VERSION; }

absl::StatusOr<NodeRecord> SelfRecord(std::string role, std::string service, std::string node_id,
                                      std::string endpoint, std::string http_endpoint) {
  NodeRecord record;
  record.role = std::move(role);
  record.service = std::move(service);
  record.node_id = std::move(node_id);
  record.endpoint = std::move(endpoint);
  record.http_endpoint = std::move(http_endpoint);
  record.weight = absl::GetFlag(FLAGS_registry_weight);
  if (record.weight < 1 || record.weight > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--registry_weight ", record.weight, " is outside 1..1000"));
  }
  record.version = TxcoordVersion();
  record.pid = static_cast<int64_t>(getpid());
  record.started = absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone());
  return record;
}

absl::StatusOr<std::unique_ptr<RegistryConnection>> RegisterFromFlags(const NodeRecord& record,
                                                                      MetricsRegistry* metrics) {
  absl::StatusOr<RegistryOptions> options = RegistryOptionsFromFlags();
  if (!options.ok()) return options.status();
  if (options->url.empty()) return std::unique_ptr<RegistryConnection>();
  absl::StatusOr<std::unique_ptr<RegistryConnection>> connection =
      RegistryConnection::Open(*std::move(options));
  if (!connection.ok()) return connection.status();
  if (absl::Status registered = (*connection)->Register(record); !registered.ok()) {
    return absl::Status(registered.code(),
                        absl::StrCat("registering in etcd: ", registered.message()));
  }
  if (metrics != nullptr) (*connection)->AddMetrics(metrics);
  return connection;
}

absl::StatusOr<std::unique_ptr<RegistryConnection>> RegistryConnection::Open(
    RegistryOptions options) {
  absl::StatusOr<std::vector<std::string>> endpoints = ParseRegistryUrl(options.url);
  if (!endpoints.ok()) return endpoints.status();
  EtcdClientOptions client_options;
  client_options.endpoints = *std::move(endpoints);
  client_options.call_timeout = options.call_timeout;
  auto etcd = std::make_unique<EtcdClient>(std::move(client_options));
  return std::unique_ptr<RegistryConnection>(
      new RegistryConnection(std::move(options), std::move(etcd)));
}

RegistryConnection::~RegistryConnection() {
  Deregister();
  discovery_.reset();
}

absl::Status RegistryConnection::Register(NodeRecord record, std::vector<TxnCompare> guard,
                                          std::function<void(const absl::Status&)> on_fenced) {
  if (registrar_ != nullptr) return absl::FailedPreconditionError("already registered");
  RegistrarOptions registrar_options;
  registrar_options.prefix = options_.prefix;
  registrar_options.ttl = options_.ttl;
  registrar_options.guard = std::move(guard);
  registrar_options.on_fenced = std::move(on_fenced);
  auto registrar =
      std::make_unique<Registrar>(etcd_.get(), &timers_, std::move(record), registrar_options);
  if (absl::Status started = registrar->Start(); !started.ok()) return started;
  registrar_ = std::move(registrar);
  return absl::OkStatus();
}

absl::StatusOr<Discovery*> RegistryConnection::StartDiscovery() {
  if (discovery_ != nullptr) return discovery_.get();
  DiscoveryOptions discovery_options;
  discovery_options.prefix = options_.prefix;
  auto discovery = std::make_unique<Discovery>(etcd_.get(), &timers_, discovery_options);
  if (absl::Status started = discovery->Start(); !started.ok()) return started;
  discovery_ = std::move(discovery);
  return discovery_.get();
}

void RegistryConnection::Drain() {
  if (registrar_ == nullptr) return;
  if (absl::Status drained = registrar_->SetDraining(true); !drained.ok()) {
    // Deregistering at the end of the shutdown still takes it out.
    TXLOG(WARNING) << "registry: cannot mark " << registrar_->key() << " draining: " << drained;
  }
}

void RegistryConnection::Deregister() {
  if (registrar_ != nullptr) registrar_->Stop();
}

void RegistryConnection::AddMetrics(MetricsRegistry* registry) {
  if (registrar_ != nullptr) registrar_->AddMetrics(registry);
  if (discovery_ != nullptr) discovery_->AddMetrics(registry);
}

}  // namespace txcoord::cluster
