// txctl's subcommands: each takes the parsed invocation, prints its result
// (a table for people, or JSON with --json) and returns an exit code
// (exit_codes.h). Shared plumbing for them lives here too.
#ifndef TXCOORD_CLI_COMMANDS_H_
#define TXCOORD_CLI_COMMANDS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/command_line.h"

namespace txcoord::cli {

inline constexpr char kDefaultCoordinator[] = "127.0.0.1:7070";
inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(10);

struct Invocation {
  CommandLine line;
  std::vector<std::string> args;  // positional arguments after the command words
  bool json = false;
  absl::Duration timeout = kDefaultTimeout;
  std::string coordinator = kDefaultCoordinator;
  std::string agent;  // empty unless --agent was given
  // From --tls-*; nullptr means insecure.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// A channel to `target` with the invocation's settings.
std::shared_ptr<grpc::Channel> ChannelTo(const Invocation& invocation, const std::string& target);
// Sets the call deadline from --timeout.
void PrepareContext(const Invocation& invocation, grpc::ClientContext* context);

// Reports `status` (naming `what` failed) on stderr, and as
// {"error": {...}} on stdout with --json; returns its exit code. An
// unreachable daemon gets `unreachable_hint` (empty: the one about
// --coordinator and --agent).
int ReportError(const Invocation& invocation, const absl::Status& status, const std::string& what,
                const std::string& unreachable_hint = "");
// A usage error: message and a pointer to the command's help; returns 1.
int UsageError(const std::string& command, const std::string& message);

// Coordinator (coordinator_commands.cc).
int RunList(const Invocation& invocation);
int RunShow(const Invocation& invocation);
int RunRetry(const Invocation& invocation);
int RunAbort(const Invocation& invocation);
int RunMarkDone(const Invocation& invocation);
// Agent (agent_commands.cc); need --agent.
int RunInDoubt(const Invocation& invocation);
int RunResolve(const Invocation& invocation);
int RunHeuristics(const Invocation& invocation);
// An agent's outbox (outbox_commands.cc); need --agent.
int RunOutboxList(const Invocation& invocation);
int RunOutboxShow(const Invocation& invocation);
int RunOutboxRetry(const Invocation& invocation);
int RunOutboxPurge(const Invocation& invocation);
// The config centre's settings in etcd (config_commands.cc); need
// --registry.
int RunConfigList(const Invocation& invocation);
int RunConfigGet(const Invocation& invocation);
int RunConfigSet(const Invocation& invocation);
int RunConfigUnset(const Invocation& invocation);
int RunConfigHistory(const Invocation& invocation);
// Offline WAL (wal_commands.cc).
int RunWalCheck(const Invocation& invocation);
int RunWalDump(const Invocation& invocation);

}  // namespace txcoord::cli

#endif  // TXCOORD_CLI_COMMANDS_H_
