#include "cli/command_line.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace txcoord::cli {

bool FlagTakesValue(const std::string& name) {
  static const std::set<std::string>* const kValueFlags =
      new std::set<std::string>{"coordinator", "agent",          "timeout",
                                "state",       "min-age",        "participant",
                                "page-size",   "page-token",     "reason",
                                "note",        "tls-cert",       "tls-key",
                                "tls-ca",      "registry",       "registry-prefix",
                                "service",     "coordinator-id", "coordinator-service"};
  return kValueFlags->count(name) != 0;
}

std::string CommandLine::Get(const std::string& name, const std::string& fallback) const {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  CommandLine line;
  bool only_words = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (only_words || arg == "-" || !absl::StartsWith(arg, "-")) {
      line.words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_words = true;
      continue;
    }
    if (arg == "-h") {
      line.flags["help"] = "";
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option \"", arg, "\" (options are spelled --name)"));
    }
    const size_t eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::replace(name.begin(), name.end(), '_', '-');
    if (name.empty()) return absl::InvalidArgumentError(absl::StrCat("bad option \"", arg, "\""));
    std::string value;
    if (FlagTakesValue(name)) {
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      }
    } else if (eq != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " takes no value (got \"", arg.substr(eq + 1), "\")"));
    }
    if (!line.flags.emplace(name, value).second) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " given twice"));
    }
  }
  return line;
}

}  // namespace txcoord::cli
