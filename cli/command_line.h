// txctl's command line: words (the subcommand and its positional
// arguments) and --flags, in any order. Hand-rolled rather than abseil
// flags, because flags belong to subcommands and `--commit` / `--abort`
// are words more than settings.
//
//   absl::StatusOr<CommandLine> line = ParseCommandLine(argc, argv);
//   line->words;             // {"resolve", "c1.3.17"}
//   line->Has("commit");     // --commit given
//   line->Get("agent", "");  // --agent=HOST:PORT
#ifndef TXCOORD_CLI_COMMAND_LINE_H_
#define TXCOORD_CLI_COMMAND_LINE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace txcoord::cli {

// Flags that take a value (--name=value or --name value); every other flag
// is a switch. Names use dashes; underscores are accepted and mapped.
bool FlagTakesValue(const std::string& name);

struct CommandLine {
  std::vector<std::string> words;            // non-flag arguments, in order
  std::map<std::string, std::string> flags;  // name -> value ("" for switches)

  bool Has(const std::string& name) const { return flags.count(name) != 0; }
  std::string Get(const std::string& name, const std::string& fallback) const;
};

// Parses argv[1..]. "-h" is --help; "--" makes every later argument a word.
// INVALID_ARGUMENT for a value flag without a value, a switch given one,
// or a flag given twice.
absl::StatusOr<CommandLine> ParseCommandLine(int argc, const char* const* argv);

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_COMMAND_LINE_H_
