#include "agent/agent_config.h"

#include "absl/strings/str_cat.h"

namespace txcoord::participant {

absl::Status ApplyAgentSetting(Participant* participant, OutboxRelay* relay,
                               const std::string& name, const cluster::SettingValue& value) {
  ParticipantPolicy policy = participant->policy();
  if (name == "lock_timeout") {
    policy.default_lock_timeout = value.duration;
    return participant->SetPolicy(policy);
  }
  if (name == "max_statement_time") {
    policy.max_statement_time = value.duration;
    return participant->SetPolicy(policy);
  }
  if (name == "branch_idle_timeout") {
    policy.branch_idle_timeout = value.duration;
    return participant->SetPolicy(policy);
  }
  RelayPolicy relay_policy = relay->policy();
  if (name == "outbox_max_attempts") {
    relay_policy.max_attempts = static_cast<int>(value.integer);
  } else if (name == "outbox_max_backoff") {
    relay_policy.max_backoff = value.duration;
  } else if (name == "outbox_retention") {
    relay->SetRetention(value.duration);
    return absl::OkStatus();
  } else {
    return absl::InvalidArgumentError(absl::StrCat(name, " is not an agent setting"));
  }
  relay->SetPolicy(relay_policy);
  return absl::OkStatus();
}

}  // namespace txcoord::participant
