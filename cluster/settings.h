// The config centre's schema (docs/cluster.md, "Config centre"): the
// per-service policy an operator may change in etcd while the daemons run.
// Each setting is named after the daemon flag it overrides and takes the
// text that flag takes; the flag's value stays the default.
//
//   absl::StatusOr<SettingValue> v =
//       ValidateSetting(SettingRole::kAgent, "lock_timeout", "300ms");
//   // v->duration == absl::Milliseconds(300); "banana": INVALID_ARGUMENT
#ifndef TXCOORD_CLUSTER_SETTINGS_H_
#define TXCOORD_CLUSTER_SETTINGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace txcoord::cluster {

// Which daemon a setting applies to.
enum class SettingRole { kAgent, kCoordinator };
// "agent" or "coordinator" (node_record.h's role names).
const char* SettingRoleName(SettingRole role);

enum class SettingType { kDuration, kInteger };

// A setting's value: `duration` for kDuration, `integer` for kInteger.
struct SettingValue {
  SettingType type = SettingType::kDuration;
  absl::Duration duration;
  int64_t integer = 0;

  static SettingValue Duration(absl::Duration d) { return {SettingType::kDuration, d, 0}; }
  static SettingValue Integer(int64_t i) {
    return {SettingType::kInteger, absl::ZeroDuration(), i};
  }
  // The text its flag takes: "300ms", "1m", "0", "20".
  std::string ToString() const;
  bool operator==(const SettingValue& other) const;
  bool operator!=(const SettingValue& other) const { return !(*this == other); }
};

// One row of the schema.
struct SettingSpec {
  std::string name;  // == the daemon flag it overrides
  SettingRole role;
  SettingType type;
  SettingValue min;  // allowed: min..max inclusive,
  SettingValue max;
  // ... and zero as well when this is set: what zero means ("no limit").
  std::string zero_means;
  std::string help;  // one line
};

// Every setting, agent's first, in a fixed order.
const std::vector<SettingSpec>& AllSettings();
// Null if `name` is not a setting.
const SettingSpec* FindSetting(absl::string_view name);
// The names of `role`'s settings (every setting's if nullopt), in order.
std::vector<std::string> SettingNames(std::optional<SettingRole> role = std::nullopt);
// "10ms..1m", "0 (no limit) or 100ms..1h", "1..10000".
std::string AllowedRange(const SettingSpec& spec);

// Parses `text` as `spec`'s type, without checking bounds (a flag's value
// is the default even outside them). INVALID_ARGUMENT naming the setting.
absl::StatusOr<SettingValue> ParseSettingValue(const SettingSpec& spec, absl::string_view text);

// What an operator or etcd may set: `text` parsed and within bounds, for a
// setting of `role` (any role if nullopt). INVALID_ARGUMENT that names the
// setting, quotes the value and gives the allowed range; for an unknown
// name (or one of the other role) it lists the known ones.
absl::StatusOr<SettingValue> ValidateSetting(std::optional<SettingRole> role,
                                             absl::string_view name, absl::string_view text);

// The value of each of `role`'s settings in this process's flags (the
// defaults a deleted key goes back to), read by flag name. Every flag must
// be defined in the binary: INVALID_ARGUMENT naming any that is not or that
// does not parse.
absl::StatusOr<std::map<std::string, SettingValue>> FlagDefaults(SettingRole role);

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_SETTINGS_H_
