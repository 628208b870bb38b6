// The coordinator's side of the config centre (docs/cluster.md): a setting
// from etcd, already validated against the schema (cluster/settings.h),
// applied to the running engine.
#ifndef TXCOORD_COORDINATOR_COORDINATOR_CONFIG_H_
#define TXCOORD_COORDINATOR_COORDINATOR_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "cluster/settings.h"
#include "coordinator/runtime.h"

namespace txcoord::coordinator {

// Applies coordinator setting `name` (tx_timeout, prepare_timeout,
// phase2_retry_max) at once. INVALID_ARGUMENT, nothing changed, for a name
// that is not a coordinator setting or a value the engine refuses.
// Calls must not overlap (the config watcher makes one at a time): each
// reads, changes and writes back the policy.
absl::Status ApplyCoordinatorSetting(Runtime* runtime, const std::string& name,
                                     const cluster::SettingValue& value);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_COORDINATOR_CONFIG_H_
