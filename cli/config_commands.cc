// txctl config list|get|set|unset|history over an Etcd (config_commands.h).
#include "cli/config_commands.h"

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_writer.h"
#include "cluster/etcd_client.h"
#include "cluster/node_record.h"
#include "cluster/settings.h"
#include "common/txid.h"

namespace txcoord::cli {
namespace {

using cluster::KeyValue;
using cluster::RangeResult;
using cluster::SettingValue;

// A set retried this often when someone else changed the key meanwhile.
constexpr int kSetTries = 5;
// `history` stops after this many values.
constexpr int kMaxHistory = 1000;

std::string Key(const Invocation& invocation, const std::string& service, const std::string& name) {
  return cluster::ConfigPrefix(RegistryPrefix(invocation), service) + name;
}

// What a daemon would make of a stored value: empty if it applies it.
std::string Problem(const std::string& name, const std::string& value) {
  absl::StatusOr<SettingValue> parsed = cluster::ValidateSetting(std::nullopt, name, value);
  return parsed.ok() ? "" : std::string(parsed.status().message());
}

int EtcdError(const Invocation& invocation, const absl::Status& status, const std::string& what,
              cluster::Etcd* etcd) {
  return ReportError(invocation, status, absl::StrCat(what, " (", etcd->Describe(), ")"),
                     " (is etcd running there? --registry names it)");
}

// Checks the SERVICE and NAME arguments, and VALUE for set, before any call
// to etcd; the value to write if there is one.
absl::StatusOr<std::optional<SettingValue>> CheckArguments(const Invocation& invocation) {
  const std::string& service = invocation.args.at(0);
  if (!IsValidName(service)) {
    return absl::InvalidArgumentError(
        absl::StrCat("service \"", service, "\" is not a name: 1 to 128 of [A-Za-z0-9_.:-]"));
  }
  if (invocation.args.size() < 2) return std::nullopt;
  const std::string& name = invocation.args[1];
  if (invocation.args.size() == 2) {
    if (cluster::FindSetting(name) != nullptr) return std::nullopt;
    // The schema's message for an unknown name lists the known ones.
    return cluster::ValidateSetting(std::nullopt, name, "").status();
  }
  absl::StatusOr<SettingValue> value =
      cluster::ValidateSetting(std::nullopt, name, invocation.args[2]);
  if (!value.ok()) return value.status();
  return std::optional<SettingValue>(*value);
}

// A command's SERVICE NAME [VALUE], checked, and the key they name.
struct Setting {
  std::string service;
  std::string name;
  std::string key;
  std::optional<SettingValue> value;  // set when the command took a VALUE
};

absl::StatusOr<Setting> ParseSetting(const Invocation& invocation) {
  absl::StatusOr<std::optional<SettingValue>> checked = CheckArguments(invocation);
  if (!checked.ok()) return checked.status();
  Setting setting;
  setting.service = invocation.args.at(0);
  setting.name = invocation.args.at(1);
  setting.key = Key(invocation, setting.service, setting.name);
  setting.value = *std::move(checked);
  return setting;
}

// The setting as its daemons see it, for messages.
std::string Shown(const std::optional<KeyValue>& kv, const std::string& name) {
  if (!kv.has_value()) return absl::StrCat("unset (--", name, " flag)");
  return kv->value;
}

absl::StatusOr<std::optional<KeyValue>> Read(cluster::Etcd* etcd, const std::string& key,
                                             int64_t revision = 0) {
  absl::StatusOr<RangeResult> read = etcd->Get(key, revision);
  if (!read.ok()) return read.status();
  if (read->kvs.empty()) return std::nullopt;
  return std::optional<KeyValue>(read->kvs.front());
}

// Runs `command` on a client of --registry. The client connects on its
// first call, so arguments the command refuses never reach etcd.
int WithRegistry(const Invocation& invocation, const std::string& name,
                 int (*command)(const Invocation&, cluster::Etcd*)) {
  const std::string registry = invocation.line.Get("registry", "");
  if (registry.empty()) {
    return UsageError(name, "--registry=etcd://HOST:PORT[,HOST:PORT...] is required");
  }
  absl::StatusOr<std::vector<std::string>> endpoints = cluster::ParseRegistryUrl(registry);
  if (!endpoints.ok()) {
    return UsageError(name, absl::StrCat("--registry: ", endpoints.status().message()));
  }
  cluster::EtcdClientOptions options;
  options.endpoints = *std::move(endpoints);
  options.call_timeout = invocation.timeout;
  cluster::EtcdClient etcd(std::move(options));
  return command(invocation, &etcd);
}

}  // namespace

int RunConfigList(const Invocation& invocation) {
  return WithRegistry(invocation, "config list", ConfigList);
}
int RunConfigGet(const Invocation& invocation) {
  return WithRegistry(invocation, "config get", ConfigGet);
}
int RunConfigSet(const Invocation& invocation) {
  return WithRegistry(invocation, "config set", ConfigSet);
}
int RunConfigUnset(const Invocation& invocation) {
  return WithRegistry(invocation, "config unset", ConfigUnset);
}
int RunConfigHistory(const Invocation& invocation) {
  return WithRegistry(invocation, "config history", ConfigHistory);
}

std::string RegistryPrefix(const Invocation& invocation) {
  return invocation.line.Get("registry-prefix", cluster::kDefaultPrefix);
}

int ConfigList(const Invocation& invocation, cluster::Etcd* etcd) {
  const std::string prefix = RegistryPrefix(invocation);
  const std::string all = prefix + "/config/";
  std::string range = all;
  if (!invocation.args.empty()) {
    absl::StatusOr<std::optional<SettingValue>> checked = CheckArguments(invocation);
    if (!checked.ok()) return ReportError(invocation, checked.status(), "config list");
    range = cluster::ConfigPrefix(prefix, invocation.args[0]);
  }
  absl::StatusOr<RangeResult> read = etcd->GetPrefix(range);
  if (!read.ok()) return EtcdError(invocation, read.status(), "reading " + range, etcd);
  struct Row {
    std::string service, name, value, problem;
    int64_t revision;
  };
  std::vector<Row> rows;
  for (const KeyValue& kv : read->kvs) {
    const std::string rest = kv.key.substr(all.size());
    const size_t slash = rest.find('/');
    Row row{rest.substr(0, slash), slash == std::string::npos ? "" : rest.substr(slash + 1),
            kv.value, "", kv.mod_revision};
    row.problem = Problem(row.name, row.value);
    rows.push_back(std::move(row));
  }
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject();
    json.Key("prefix").String(range);
    json.Key("revision").Int(read->revision);
    json.Key("settings").BeginArray();
    for (const Row& row : rows) {
      json.BeginObject();
      json.Key("service").String(row.service);
      json.Key("name").String(row.name);
      json.Key("value").String(row.value);
      json.Key("mod_revision").Int(row.revision);
      json.Key("valid").Bool(row.problem.empty());
      json.Key("error").String(row.problem);
      json.EndObject();
    }
    json.EndArray().EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  Table table({"SERVICE", "NAME", "VALUE", "REVISION", "NOTE"});
  for (const Row& row : rows) {
    table.AddRow({row.service, row.name, row.value, absl::StrCat(row.revision),
                  row.problem.empty() ? "" : "IGNORED by the daemons: " + row.problem});
  }
  std::cout << table.Render() << rows.size() << " setting(s) under " << range
            << " at etcd revision " << read->revision
            << "; a setting not listed is its daemon's flag\n";
  return kExitOk;
}

int ConfigGet(const Invocation& invocation, cluster::Etcd* etcd) {
  absl::StatusOr<Setting> setting = ParseSetting(invocation);
  if (!setting.ok()) return ReportError(invocation, setting.status(), "config get");
  const std::string& service = setting->service;
  const std::string& name = setting->name;
  const std::string& key = setting->key;
  absl::StatusOr<std::optional<KeyValue>> kv = Read(etcd, key);
  if (!kv.ok()) return EtcdError(invocation, kv.status(), "reading " + key, etcd);
  const std::string problem = kv->has_value() ? Problem(name, (*kv)->value) : "";
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject();
    json.Key("service").String(service);
    json.Key("name").String(name);
    json.Key("set").Bool(kv->has_value());
    if (kv->has_value()) {
      json.Key("value").String((*kv)->value);
      json.Key("mod_revision").Int((*kv)->mod_revision);
      json.Key("valid").Bool(problem.empty());
      json.Key("error").String(problem);
    }
    json.EndObject();
    std::cout << json.str() << "\n";
    return kv->has_value() ? kExitOk : kExitNotFound;
  }
  if (!kv->has_value()) {
    std::cout << service << " " << name << ": not set in etcd; its daemons use their --" << name
              << " flag\n";
    return kExitNotFound;
  }
  std::cout << service << " " << name << " = " << (*kv)->value << " (etcd revision "
            << (*kv)->mod_revision << ")"
            << (problem.empty() ? "" : "\n  IGNORED by the daemons: " + problem) << "\n";
  return kExitOk;
}

int ConfigSet(const Invocation& invocation, cluster::Etcd* etcd) {
  absl::StatusOr<Setting> setting = ParseSetting(invocation);
  if (!setting.ok()) return ReportError(invocation, setting.status(), "config set");
  const std::string& service = setting->service;
  const std::string& name = setting->name;
  const std::string& key = setting->key;
  const std::string value = setting->value->ToString();
  for (int attempt = 0; attempt < kSetTries; ++attempt) {
    absl::StatusOr<std::optional<KeyValue>> old = Read(etcd, key);
    if (!old.ok()) return EtcdError(invocation, old.status(), "reading " + key, etcd);
    // Written only over the value just read: an operator's concurrent change
    // is never lost without being shown as the old value.
    absl::StatusOr<bool> written =
        etcd->PutIf(key, value, old->has_value() ? (*old)->mod_revision : 0);
    if (!written.ok()) return EtcdError(invocation, written.status(), "writing " + key, etcd);
    if (!*written) continue;
    absl::StatusOr<std::optional<KeyValue>> now = Read(etcd, key);
    const int64_t revision = now.ok() && now->has_value() ? (*now)->mod_revision : 0;
    if (invocation.json) {
      JsonWriter json;
      json.BeginObject();
      json.Key("service").String(service);
      json.Key("name").String(name);
      json.Key("old").String(old->has_value() ? (*old)->value : "");
      json.Key("old_set").Bool(old->has_value());
      json.Key("value").String(value);
      json.Key("mod_revision").Int(revision);
      json.EndObject();
      std::cout << json.str() << "\n";
      return kExitOk;
    }
    std::cout << service << " " << name << ": " << Shown(*old, name) << " -> " << value
              << " (etcd revision " << revision << "); its daemons apply it as they see it\n";
    return kExitOk;
  }
  return ReportError(invocation,
                     absl::AbortedError(absl::StrCat(key, " kept changing while being set (",
                                                     kSetTries, " tries); try again")),
                     "config set");
}

int ConfigUnset(const Invocation& invocation, cluster::Etcd* etcd) {
  absl::StatusOr<Setting> setting = ParseSetting(invocation);
  if (!setting.ok()) return ReportError(invocation, setting.status(), "config unset");
  const std::string& service = setting->service;
  const std::string& name = setting->name;
  const std::string& key = setting->key;
  absl::StatusOr<std::optional<KeyValue>> old = Read(etcd, key);
  if (!old.ok()) return EtcdError(invocation, old.status(), "reading " + key, etcd);
  absl::StatusOr<int64_t> deleted = etcd->Delete(key);
  if (!deleted.ok()) return EtcdError(invocation, deleted.status(), "deleting " + key, etcd);
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject();
    json.Key("service").String(service);
    json.Key("name").String(name);
    json.Key("old").String(old->has_value() ? (*old)->value : "");
    json.Key("deleted").Bool(*deleted > 0);
    json.EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  if (*deleted == 0) {
    std::cout << service << " " << name << ": was not set; its daemons use their --" << name
              << " flag\n";
    return kExitOk;
  }
  std::cout << service << " " << name << ": " << (old->has_value() ? (*old)->value : "?")
            << " -> unset; its daemons go back to their --" << name << " flag\n";
  return kExitOk;
}

int ConfigHistory(const Invocation& invocation, cluster::Etcd* etcd) {
  absl::StatusOr<Setting> setting = ParseSetting(invocation);
  if (!setting.ok()) return ReportError(invocation, setting.status(), "config history");
  const std::string& service = setting->service;
  const std::string& name = setting->name;
  const std::string& key = setting->key;
  std::vector<KeyValue> values;
  // How the walk ended, in words; `compacted` when etcd no longer has it.
  std::string end;
  bool compacted = false;
  absl::StatusOr<std::optional<KeyValue>> kv = Read(etcd, key);
  if (!kv.ok()) return EtcdError(invocation, kv.status(), "reading " + key, etcd);
  if (!kv->has_value()) {
    end = "not set now (a deleted key's earlier values are not reachable by revision)";
  }
  while (kv->has_value() && values.size() < kMaxHistory) {
    values.push_back(**kv);
    const KeyValue& last = values.back();
    if (last.version <= 1) {
      end = absl::StrCat("first set at revision ", last.mod_revision);
      break;
    }
    kv = Read(etcd, key, last.mod_revision - 1);
    if (!kv.ok() && kv.status().code() == absl::StatusCode::kOutOfRange) {
      compacted = true;
      end = absl::StrCat("older values compacted away by etcd (before revision ", last.mod_revision,
                         ")");
      break;
    }
    if (!kv.ok()) return EtcdError(invocation, kv.status(), "reading " + key, etcd);
    if (!kv->has_value()) end = absl::StrCat("first set at revision ", last.mod_revision);
  }
  if (values.size() >= kMaxHistory) end = absl::StrCat("stopped after ", kMaxHistory, " values");
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject();
    json.Key("service").String(service);
    json.Key("name").String(name);
    json.Key("values").BeginArray();
    for (const KeyValue& v : values) {
      const std::string problem = Problem(name, v.value);
      json.BeginObject();
      json.Key("mod_revision").Int(v.mod_revision);
      json.Key("value").String(v.value);
      json.Key("valid").Bool(problem.empty());
      json.Key("error").String(problem);
      json.EndObject();
    }
    json.EndArray();
    json.Key("compacted").Bool(compacted);
    json.Key("end").String(end);
    json.EndObject();
    std::cout << json.str() << "\n";
    return kExitOk;
  }
  Table table({"REVISION", "VALUE", "NOTE"});
  for (const KeyValue& v : values) {
    const std::string problem = Problem(name, v.value);
    table.AddRow({absl::StrCat(v.mod_revision), v.value,
                  problem.empty() ? "" : "IGNORED by the daemons: " + problem});
  }
  std::cout << service << " " << name << ", newest first:\n" << table.Render() << end << "\n";
  return kExitOk;
}

}  // namespace txcoord::cli
