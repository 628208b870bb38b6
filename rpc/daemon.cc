#include "rpc/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/support/server_interceptor.h"
#include "rpc/grpc_util.h"

namespace txcoord {
namespace {

// Lives exactly as long as one call: holds the call in the tracker's count.
class InflightInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit InflightInterceptor(InflightTracker* tracker) : scope_(tracker) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  InflightTracker::Scope scope_;
};

class InflightInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InflightInterceptorFactory(InflightTracker* tracker) : tracker_(tracker) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new InflightInterceptor(tracker_);
  }

 private:
  InflightTracker* const tracker_;
};

}  // namespace

void NormalizeFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (std::strncmp(arg, "--", 2) != 0) continue;
    if (std::strcmp(arg, "--") == 0) break;
    for (char* p = arg + 2; *p != '\0' && *p != '='; ++p) {
      if (*p == '-') *p = '_';
    }
  }
}

void DisableMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer that vanishes mid-write must not kill the daemon.
  signal(SIGPIPE, SIG_IGN);
}

int WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

bool ShutdownSignalPending() {
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) != 0) return false;
  return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

absl::StatusOr<ServerHandle> StartServer(const std::string& name, const std::string& listen,
                                         const std::vector<grpc::Service*>& services,
                                         std::shared_ptr<grpc::ServerCredentials> credentials) {
  return StartServer(name, listen, services, ServerOptions{std::move(credentials), nullptr});
}

absl::StatusOr<ServerHandle> StartServer(const std::string& name, const std::string& listen,
                                         const std::vector<grpc::Service*>& services,
                                         const ServerOptions& options) {
  std::shared_ptr<grpc::ServerCredentials> credentials = options.credentials;
  if (options.access_policy != nullptr && credentials != nullptr) {
    // gRPC runs the processor on every call of this port, before the
    // handler: a refused call never reaches the service.
    credentials->SetAuthMetadataProcessor(
        std::make_shared<AccessAuthProcessor>(options.access_policy));
  }
  const size_t colon = listen.rfind(':');
  if (listen.empty() || colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen must be host:port, got \"", listen, "\""));
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, credentials ? credentials : grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // A handler that blocks (an Execute waiting for a row lock, a Prepare for
  // its sync) makes the sync server start another poller thread, and a
  // thread that finishes a call exits if MAX_POLLERS pollers are idle
  // already. So a daemon keeps up to MAX_POLLERS idle threads from its
  // busiest moment, and starts and ends a thread per call only beyond that
  // (with the default of 2, about one per transaction under load; with 16,
  // 0.3 per transaction at each agent at 64 clients, which cost 12-35 % of
  // the throughput there: docs/benchmarks.md). Threads busy at once are not
  // capped here. An idle one costs the pages its stack touched and its
  // malloc cache. The coordinator's own service uses the callback API: its
  // sync pool serves only the admin and reflection services.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 128);
  for (grpc::Service* service : services) builder.RegisterService(service);
  if (options.inflight != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(std::make_unique<InflightInterceptorFactory>(options.inflight));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " (address in use or invalid?)"));
  }
  ServerHandle handle{std::move(server), absl::StrCat(listen.substr(0, colon), ":", port)};
  std::printf("%s listening on %s\n", name.c_str(), handle.address.c_str());
  std::fflush(stdout);
  return handle;
}

bool DrainServer(ServerHandle& server, InflightTracker& inflight, absl::Duration grace) {
  const absl::Time deadline = absl::Now() + grace;
  grpc::Server* raw = server.server.get();
  auto shut_down = std::make_shared<absl::Notification>();
  // Shutdown refuses new calls and tells every client to go away (GOAWAY)
  // at once, but then also waits for clients to hang up; only the calls in
  // flight matter here, so it runs on its own thread.
  std::thread([raw, grace, shut_down] {
    raw->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
    shut_down->Notify();
  }).detach();
  const bool idle = inflight.WaitIdle(deadline);
  // A moment for the GOAWAYs to reach the clients, so that they reconnect
  // cleanly to the next process instead of failing one call on a dead
  // socket.
  shut_down->WaitForNotificationWithTimeout(absl::Milliseconds(200));
  return idle;
}

}  // namespace txcoord
