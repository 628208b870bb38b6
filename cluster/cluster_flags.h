// The flags every daemon and txctl share for cluster mode (docs/cluster.md).
// Empty --registry: no etcd, everything from flags and static addresses.
#ifndef TXCOORD_CLUSTER_CLUSTER_FLAGS_H_
#define TXCOORD_CLUSTER_CLUSTER_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, registry);
ABSL_DECLARE_FLAG(std::string, registry_prefix);
ABSL_DECLARE_FLAG(absl::Duration, registry_ttl);
ABSL_DECLARE_FLAG(int64_t, registry_weight);

#endif  // TXCOORD_CLUSTER_CLUSTER_FLAGS_H_
