// What txctl can do: the table of subcommands (name, usage, flags, help
// text, handler) that the dispatcher and `txctl help` both read, so that
// the help can never drift from what is accepted.
#ifndef TXCOORD_CLI_HELP_H_
#define TXCOORD_CLI_HELP_H_

#include <string>
#include <vector>

#include "cli/commands.h"

namespace txcoord::cli {

struct CommandSpec {
  std::string name;                // "list", "wal check"
  std::string usage;               // synopsis after "txctl "
  std::string summary;             // one line for the overview
  std::string details;             // what it does and when to use it
  std::vector<std::string> flags;  // accepted besides the global ones
  size_t min_args = 0;
  size_t max_args = 0;
  int (*run)(const Invocation&) = nullptr;
};

const std::vector<CommandSpec>& Commands();
// The command named by the leading `words` ("wal", "check", ...); sets
// *consumed to how many words named it. nullptr if none.
const CommandSpec* FindCommand(const std::vector<std::string>& words, size_t* consumed);
// Flags every command accepts.
const std::vector<std::string>& GlobalFlags();

std::string OverviewHelp();
std::string CommandHelp(const CommandSpec& spec);

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_HELP_H_
