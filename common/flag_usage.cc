#include "common/flag_usage.h"

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"

namespace txcoord {

std::string FlagFileLabel(absl::string_view filename) {
  const size_t slash = filename.find_last_of('/');
  return std::string(slash == absl::string_view::npos ? filename : filename.substr(slash + 1));
}

void SetFlagUsage(absl::string_view usage_message) {
  absl::SetProgramUsageMessage(usage_message);
  absl::FlagsUsageConfig config;
  // abseil's default keeps the full source path given to the compiler, which
  // for an out-of-tree build is the build machine's checkout. The other
  // fields keep abseil's defaults (e.g. --helpshort: flags of PROGRAM_main.cc).
  config.normalize_filename = FlagFileLabel;
  // --help lists every flag the program takes, wherever it is defined (the
  // registry's, TLS, config files), not only those of its main file.
  config.contains_help_flags = [](absl::string_view) { return true; };
  absl::SetFlagsUsageConfig(config);
}

}  // namespace txcoord
