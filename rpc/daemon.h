// What every txcoord daemon does the same way: accept --flag-name as well as
// --flag_name, block SIGTERM/SIGINT so one thread can wait for them, and
// start a gRPC server (health service, reflection, size limits) that
// announces its address on stdout once it serves.
#ifndef TXCOORD_RPC_DAEMON_H_
#define TXCOORD_RPC_DAEMON_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/inflight.h"
#include "rpc/access_policy.h"

namespace txcoord {

// Rewrites "--data-dir=x" to "--data_dir=x" in place (flag names only).
void NormalizeFlagNames(int argc, char** argv);

// Call first in main, before any thread starts: every later thread
// inherits the blocked mask, so only WaitForShutdownSignal sees them.
void BlockShutdownSignals();
// Switches off abseil's Mutex deadlock detection (Debian's abseil checks a
// lock graph on every Lock, a few percent of each daemon's CPU). Call
// first in main. The unit tests, which run the same code in-process, keep
// it on.
void DisableMutexDeadlockDetection();
// Blocks until SIGTERM or SIGINT; returns the signal number.
int WaitForShutdownSignal();
// True if SIGTERM or SIGINT is pending (blocked, not yet taken): for a
// daemon that waits on something else before it serves (a standby).
bool ShutdownSignalPending();

struct ServerHandle {
  std::unique_ptr<grpc::Server> server;
  std::string address;  // "host:port" actually bound
};

// Builds and starts a server on `listen` ("host:port"; port 0 picks one)
// with the given services, the standard health service and reflection.
// Prints "<name> listening on <address>" on stdout. `credentials` nullptr
// means insecure.
absl::StatusOr<ServerHandle> StartServer(
    const std::string& name, const std::string& listen, const std::vector<grpc::Service*>& services,
    std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

struct ServerOptions {
  // nullptr: insecure (see rpc/tls.h for TLS ones).
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // Who may call which method (rpc/access_policy.h). With TLS
  // credentials it is enforced on every call before its handler runs; the
  // rules that depend on the peer's address (plaintext ports) are checked
  // by the handlers (AdmitCall), which get it from
  // access_policy.get(). nullptr: no checks.
  std::shared_ptr<const AccessPolicy> access_policy;
  // Counts every call being served, so that shutdown can wait for the
  // calls in flight rather than for idle connections. nullptr: not counted.
  InflightTracker* inflight = nullptr;
};

// As above, with the security settings of `options`.
absl::StatusOr<ServerHandle> StartServer(const std::string& name, const std::string& listen,
                                         const std::vector<grpc::Service*>& services,
                                         const ServerOptions& options);

// Stops `server` taking new calls and waits until the calls in flight (as
// counted by `inflight`) are done or `grace` passes; false in that case.
// Idle client connections do not hold it up. The server object is left
// shutting down: end the process with std::_Exit after cleaning up.
bool DrainServer(ServerHandle& server, InflightTracker& inflight, absl::Duration grace);

}  // namespace txcoord

#endif  // TXCOORD_RPC_DAEMON_H_
