#include "coordinator/coordinator_config.h"

#include "absl/strings/str_cat.h"

namespace txcoord::coordinator {

absl::Status ApplyCoordinatorSetting(Runtime* runtime, const std::string& name,
                                     const cluster::SettingValue& value) {
  EnginePolicy policy = runtime->policy();
  if (name == "tx_timeout") {
    policy.default_tx_timeout = value.duration;
  } else if (name == "prepare_timeout") {
    policy.prepare_timeout = value.duration;
  } else if (name == "phase2_retry_max") {
    policy.phase2_backoff_max = value.duration;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not a coordinator setting"));
  }
  return runtime->SetPolicy(policy);
}

}  // namespace txcoord::coordinator
