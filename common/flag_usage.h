// The --help of every txcoord binary that parses abseil flags: the program's
// usage message, and flags grouped by the basename of the file that defines
// them ("Flags from txcoord_main.cc:"), never by the path the binary was
// built from, which means nothing to its user.
//
//   txcoord::SetFlagUsage("txcoord: the coordinator.\nUsage: txcoord --data-dir=DIR");
//   absl::ParseCommandLine(argc, argv);
#ifndef TXCOORD_COMMON_FLAG_USAGE_H_
#define TXCOORD_COMMON_FLAG_USAGE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace txcoord {

// Sets abseil's program usage message and usage config. Call once in main,
// before absl::ParseCommandLine (which answers --help); not thread-safe.
void SetFlagUsage(absl::string_view usage_message);

// What --help shows for a flag defined in `filename`: its last path
// component. Exposed for tests.
std::string FlagFileLabel(absl::string_view filename);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_FLAG_USAGE_H_
