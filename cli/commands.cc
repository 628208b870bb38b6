// Plumbing shared by txctl's commands: channels, deadlines, error reports.
#include "cli/commands.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"
#include "cli/json_writer.h"
#include "rpc/grpc_util.h"

namespace txcoord::cli {

std::shared_ptr<grpc::Channel> ChannelTo(const Invocation& invocation, const std::string& target) {
  return MakeChannel(target, invocation.credentials);
}

void PrepareContext(const Invocation& invocation, grpc::ClientContext* context) {
  SetDeadline(context, invocation.timeout);
}

int ReportError(const Invocation& invocation, const absl::Status& status, const std::string& what,
                const std::string& unreachable_hint) {
  const int code = ExitCodeFor(status);
  std::string hint;
  if (code == kExitUnreachable) {
    hint = unreachable_hint.empty() ? " (is the daemon running there? --coordinator / --agent "
                                      "name it; --timeout waits longer)"
                                    : unreachable_hint;
  }
  std::cerr << "txctl: " << what << ": " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << hint << "\n";
  if (invocation.json) {
    JsonWriter json;
    json.BeginObject().Key("error").BeginObject();
    json.Key("code").String(absl::StatusCodeToString(status.code()));
    json.Key("message").String(status.message());
    json.Key("exit_code").Int(code);
    json.EndObject().EndObject();
    std::cout << json.str() << "\n";
  }
  return code;
}

int UsageError(const std::string& command, const std::string& message) {
  std::cerr << "txctl " << command << ": " << message << "\n(see txctl help " << command << ")\n";
  return kExitUsage;
}

}  // namespace txcoord::cli
