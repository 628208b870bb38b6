// The daemons' configuration file (--config=FILE): the same names as their
// flags, one "name = value" a line, so that an installed daemon reads
// /etc/txcoord/txcoord.conf instead of a long command line. Values from the
// file are set first; flags on the command line then override them.
//
//   # /etc/txcoord/txcoord.conf
//   listen = 0.0.0.0:7070
//   data-dir = /var/lib/txcoord/coordinator   # created if missing
//
//   txcoord::NormalizeFlagNames(argc, argv);
//   if (absl::Status s = txcoord::ApplyConfigFileFromArgs(argc, argv); !s.ok()) ...exit 2
//   absl::ParseCommandLine(argc, argv);
//
// Syntax: blank lines and lines starting with '#' are skipped; a '#' after
// white space starts a comment; names may be written with '-' or '_';
// a value is the rest of the line, trimmed (no quoting, may be empty).
// A file that cannot be read, an unknown name, a name given twice or a
// value its flag rejects is an error naming the file and the line.
#ifndef TXCOORD_COMMON_CONFIG_FILE_H_
#define TXCOORD_COMMON_CONFIG_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txcoord {

// The FILE of "--config=FILE" or "--config FILE" in argv (the last one
// given; flags after "--" are not flags), or "" when there is none.
// INVALID_ARGUMENT for a "--config" with no value.
absl::StatusOr<std::string> ConfigPathFromArgs(int argc, char** argv);

// Sets the abseil flags named in `contents`, the text of the file `path`
// (which only names it in errors). Stops at the first bad line:
// INVALID_ARGUMENT "PATH:LINE: ..."; the flags of earlier lines stay set.
// Not thread-safe: call from main before any thread reads flags.
absl::Status ApplyConfig(absl::string_view path, absl::string_view contents);

// Reads `path` and applies it; NOT_FOUND / PERMISSION_DENIED / ... naming
// the file when it cannot be read.
absl::Status ApplyConfigFile(const std::string& path);

// ConfigPathFromArgs, then ApplyConfigFile when a file was named. Call
// after NormalizeFlagNames and before absl::ParseCommandLine, so that the
// command line wins. The binary must link txcoord_config_file, which
// defines --config.
absl::Status ApplyConfigFileFromArgs(int argc, char** argv);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_CONFIG_FILE_H_
