// txctl: the operator CLI. Parses the command line, prints help, and hands
// the invocation to the subcommand (commands.h). Exit codes: exit_codes.h.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/cluster_commands.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/help.h"
#include "rpc/tls.h"

namespace txcoord::cli {
namespace {

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration timeout;
  double seconds;
  if (absl::ParseDuration(text, &timeout)) {
  } else if (absl::SimpleAtod(text, &seconds)) {
    timeout = absl::Seconds(seconds);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout=", text, " is not a duration (e.g. 5s, 500ms)"));
  }
  if (timeout <= absl::ZeroDuration() || timeout > absl::Hours(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout=", text, " must be above 0 and at most 1h"));
  }
  return timeout;
}

int Main(int argc, char** argv) {
  absl::StatusOr<CommandLine> line = ParseCommandLine(argc, argv);
  if (!line.ok()) {
    std::cerr << "txctl: " << line.status().message() << "\n(see txctl --help)\n";
    return kExitUsage;
  }
  std::vector<std::string> words = line->words;
  const bool help_word = !words.empty() && words[0] == "help";
  if (help_word) words.erase(words.begin());
  if (words.empty()) {
    std::cout << OverviewHelp();
    return help_word || line->Has("help") ? kExitOk : kExitUsage;
  }
  size_t consumed = 0;
  const CommandSpec* spec = FindCommand(words, &consumed);
  if (spec == nullptr) {
    std::cerr << "txctl: unknown command \"" << words[0]
              << (words.size() > 1 && words[0] == "wal" ? " " + words[1] : "")
              << "\" (see txctl --help)\n";
    return kExitUsage;
  }
  if (help_word || line->Has("help")) {
    std::cout << CommandHelp(*spec);
    return kExitOk;
  }
  for (const auto& [name, value] : line->flags) {
    if (!Contains(GlobalFlags(), name) && !Contains(spec->flags, name)) {
      return UsageError(spec->name, absl::StrCat("unknown flag --", name));
    }
  }
  Invocation invocation;
  invocation.args.assign(words.begin() + consumed, words.end());
  if (invocation.args.size() < spec->min_args || invocation.args.size() > spec->max_args) {
    return UsageError(spec->name, absl::StrCat("expected: txctl ", spec->usage));
  }
  invocation.json = line->Has("json");
  invocation.coordinator = line->Get("coordinator", kDefaultCoordinator);
  invocation.agent = line->Get("agent", "");
  if (line->Has("timeout")) {
    absl::StatusOr<absl::Duration> timeout = ParseTimeout(line->Get("timeout", ""));
    if (!timeout.ok()) return UsageError(spec->name, std::string(timeout.status().message()));
    invocation.timeout = *timeout;
  }
  absl::StatusOr<TlsConfig> tls =
      LoadTlsConfig({line->Get("tls-cert", ""), line->Get("tls-key", ""), line->Get("tls-ca", "")});
  if (!tls.ok()) return UsageError(spec->name, std::string(tls.status().message()));
  invocation.credentials = ChannelCredentials(*tls);
  invocation.line = *std::move(line);
  // Cluster mode: the daemons come from the registry.
  std::vector<std::pair<std::string, std::string>> coordinators;
  if (int exit = ResolveFromRegistry(spec->name, &invocation, &coordinators); exit >= 0) {
    return exit;
  }
  if (coordinators.size() <= 1) return spec->run(invocation);
  if (invocation.json) {
    std::string ids;
    for (const auto& [id, endpoint] : coordinators) absl::StrAppend(&ids, " ", id);
    return UsageError(spec->name, absl::StrCat("with --json, name one coordinator: "
                                               "--coordinator-id=ID (registered:",
                                               ids, ")"));
  }
  // `list` at every coordinator, one section each; the worst exit code.
  int worst = kExitOk;
  for (const auto& [id, endpoint] : coordinators) {
    std::cout << "== coordinator " << id << " at " << endpoint << "\n";
    invocation.coordinator = endpoint;
    worst = std::max(worst, spec->run(invocation));
  }
  return worst;
}

}  // namespace
}  // namespace txcoord::cli

int main(int argc, char** argv) { return txcoord::cli::Main(argc, argv); }
