// What every txcoord daemon does the same way: accept --flag-name as well as
// --flag_name, block SIGTERM/SIGINT so one thread can wait for them, and
// start a gRPC server (health service, reflection, size limits) that
// announces its address on stdout once it serves.
#ifndef TXCOORD_COMMON_DAEMON_H_
#define TXCOORD_COMMON_DAEMON_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

namespace txcoord {

// Rewrites "--data-dir=x" to "--data_dir=x" in place (flag names only).
void NormalizeFlagNames(int argc, char** argv);

// Call first in main, before any thread starts: every later thread
// inherits the blocked mask, so only WaitForShutdownSignal sees them.
void BlockShutdownSignals();
// Blocks until SIGTERM or SIGINT; returns the signal number.
int WaitForShutdownSignal();

struct ServerHandle {
  std::unique_ptr<grpc::Server> server;
  std::string address;  // "host:port" actually bound
};

// Builds and starts a server on `listen` ("host:port"; port 0 picks one)
// with the given services, the standard health service and reflection.
// Prints "<name> listening on <address>" on stdout. `credentials` nullptr
// means insecure.
absl::StatusOr<ServerHandle> StartServer(const std::string& name, const std::string& listen,
                                         const std::vector<grpc::Service*>& services,
                                         std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_DAEMON_H_
