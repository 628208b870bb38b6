#include "cluster/settings.h"

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cluster/node_record.h"

namespace txcoord::cluster {
namespace {

SettingSpec Duration(const char* name, SettingRole role, absl::Duration min, absl::Duration max,
                     const char* zero_means, const char* help) {
  return {name,
          role,
          SettingType::kDuration,
          SettingValue::Duration(min),
          SettingValue::Duration(max),
          zero_means,
          help};
}

SettingSpec Integer(const char* name, SettingRole role, int64_t min, int64_t max,
                    const char* help) {
  return {name, role, SettingType::kInteger, SettingValue::Integer(min), SettingValue::Integer(max),
          "",   help};
}

std::vector<SettingSpec>* MakeSettings() {
  constexpr SettingRole kAgent = SettingRole::kAgent;
  constexpr SettingRole kCoordinator = SettingRole::kCoordinator;
  // The upper bounds keep a typo from parking a daemon for days; lock_timeout's
  // is the participant's max_lock_timeout, phase2_retry_max's lower one the
  // first retry's wait.
  return new std::vector<SettingSpec>{
      Duration("lock_timeout", kAgent, absl::Milliseconds(10), absl::Seconds(60), "",
               "default wait for a row locked by another transaction before Execute fails with "
               "ABORTED"),
      Duration("max_statement_time", kAgent, absl::Milliseconds(100), absl::Hours(1), "no limit",
               "longest the statements of one Execute may run before SQLite interrupts them"),
      Duration("branch_idle_timeout", kAgent, absl::Seconds(1), absl::Hours(24), "never",
               "an unprepared branch idle this long is rolled back and its locks freed"),
      Integer("outbox_max_attempts", kAgent, 1, 10000,
              "attempts the stream may refuse a message before it is dead-lettered"),
      Duration("outbox_max_backoff", kAgent, absl::Milliseconds(100), absl::Hours(1), "",
               "longest wait between attempts to publish one outbox message"),
      Duration("outbox_retention", kAgent, absl::ZeroDuration(), absl::Hours(24 * 30), "",
               "how long delivered messages stay in the outbox before deletion"),
      Duration("tx_timeout", kCoordinator, absl::Milliseconds(100), absl::Hours(1), "",
               "transaction deadline when Begin gives none; past it an undecided transaction "
               "aborts"),
      Duration("prepare_timeout", kCoordinator, absl::Milliseconds(100), absl::Minutes(10), "",
               "how long Commit waits for every vote before aborting the transaction"),
      Duration("phase2_retry_max", kCoordinator, absl::Milliseconds(50), absl::Minutes(10), "",
               "longest wait between retries of a phase-2 Commit to an unreachable participant"),
  };
}

bool InRange(const SettingSpec& spec, const SettingValue& value) {
  if (spec.type == SettingType::kInteger) {
    return value.integer >= spec.min.integer && value.integer <= spec.max.integer;
  }
  if (value.duration == absl::ZeroDuration() && !spec.zero_means.empty()) return true;
  return value.duration >= spec.min.duration && value.duration <= spec.max.duration;
}

std::string Quote(absl::string_view text) { return absl::StrCat("\"", text, "\""); }

const char* WithArticle(SettingRole role) {
  return role == SettingRole::kAgent ? "an agent" : "a coordinator";
}

}  // namespace

const char* SettingRoleName(SettingRole role) {
  return role == SettingRole::kAgent ? kAgentRole : kCoordinatorRole;
}

std::string SettingValue::ToString() const {
  return type == SettingType::kDuration ? absl::FormatDuration(duration) : absl::StrCat(integer);
}

bool SettingValue::operator==(const SettingValue& other) const {
  if (type != other.type) return false;
  return type == SettingType::kDuration ? duration == other.duration : integer == other.integer;
}

const std::vector<SettingSpec>& AllSettings() {
  static const std::vector<SettingSpec>* const kSettings = MakeSettings();
  return *kSettings;
}

const SettingSpec* FindSetting(absl::string_view name) {
  for (const SettingSpec& spec : AllSettings()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::vector<std::string> SettingNames(std::optional<SettingRole> role) {
  std::vector<std::string> names;
  for (const SettingSpec& spec : AllSettings()) {
    if (!role.has_value() || spec.role == *role) names.push_back(spec.name);
  }
  return names;
}

std::string AllowedRange(const SettingSpec& spec) {
  std::string range = absl::StrCat(spec.min.ToString(), "..", spec.max.ToString());
  if (spec.zero_means.empty()) return range;
  return absl::StrCat("0 (", spec.zero_means, ") or ", range);
}

absl::StatusOr<SettingValue> ParseSettingValue(const SettingSpec& spec, absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (spec.type == SettingType::kInteger) {
    int64_t integer = 0;
    if (trimmed.empty() || !absl::SimpleAtoi(trimmed, &integer)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid ", spec.name, " ", Quote(text),
                                                     ": not a whole number; allowed ",
                                                     AllowedRange(spec)));
    }
    return SettingValue::Integer(integer);
  }
  absl::Duration duration;
  if (!absl::ParseDuration(trimmed, &duration) || duration == absl::InfiniteDuration() ||
      duration == -absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", spec.name, " ", Quote(text),
                                                   ": not a duration (like 300ms, 5s or 2m); "
                                                   "allowed ",
                                                   AllowedRange(spec)));
  }
  return SettingValue::Duration(duration);
}

absl::StatusOr<SettingValue> ValidateSetting(std::optional<SettingRole> role,
                                             absl::string_view name, absl::string_view text) {
  const SettingSpec* spec = FindSetting(name);
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown setting ", Quote(name), "; known: ", absl::StrJoin(SettingNames(role), ", ")));
  }
  if (role.has_value() && spec->role != *role) {
    return absl::InvalidArgumentError(absl::StrCat(
        spec->name, " is ", WithArticle(spec->role), " setting, not ", WithArticle(*role), " one; ",
        SettingRoleName(*role), " settings: ", absl::StrJoin(SettingNames(role), ", ")));
  }
  absl::StatusOr<SettingValue> value = ParseSettingValue(*spec, text);
  if (!value.ok()) return value.status();
  if (!InRange(*spec, *value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid ", spec->name, " ", Quote(text), ": out of range; allowed ", AllowedRange(*spec)));
  }
  return value;
}

absl::StatusOr<std::map<std::string, SettingValue>> FlagDefaults(SettingRole role) {
  std::map<std::string, SettingValue> defaults;
  for (const SettingSpec& spec : AllSettings()) {
    if (spec.role != role) continue;
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(spec.name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("setting ", spec.name, " has no flag --", spec.name, " in this binary"));
    }
    absl::StatusOr<SettingValue> value = ParseSettingValue(spec, flag->CurrentValue());
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", spec.name, ": ", value.status().message()));
    }
    defaults.emplace(spec.name, *value);
  }
  return defaults;
}

// Declared in node_record.h beside the other key layouts; defined here so
// that the config centre's libraries need nothing of the registry's.
std::string ConfigPrefix(const std::string& prefix, const std::string& service) {
  return absl::StrCat(prefix, "/config/", service, "/");
}

}  // namespace txcoord::cluster
