#include "harness/nats_server.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "harness/binaries.h"
#include "harness/free_port.h"

namespace txcoord::testing {
namespace {

constexpr int kPortAttempts = 5;

}  // namespace

absl::StatusOr<std::unique_ptr<NatsServer>> NatsServer::Start(const std::string& dir,
                                                              absl::Duration start_timeout) {
  absl::StatusOr<std::string> binary = NatsServerBinary();
  if (!binary.ok()) return binary.status();
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat("create ", dir, ": ", error.message()));
  absl::Status last_error;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    absl::StatusOr<int> port = PickFreeLoopbackPort();
    if (!port.ok()) return port.status();
    std::unique_ptr<NatsServer> server(new NatsServer(*binary, dir, *port, start_timeout));
    absl::MutexLock lock(&server->mu_);
    last_error = server->Launch();
    if (last_error.ok()) return server;
    // Someone else bound the port between our pick and the server's bind
    // (the error quotes the end of the server's log).
    if (!absl::StrContains(last_error.message(), "address already in use")) break;
  }
  return last_error;
}

NatsServer::NatsServer(std::string binary, std::string dir, int port, absl::Duration start_timeout)
    : binary_(std::move(binary)),
      dir_(std::move(dir)),
      port_(port),
      url_(absl::StrCat("nats://127.0.0.1:", port)),
      start_timeout_(start_timeout) {}

std::string NatsServer::log_path() const { return dir_ + "/nats-server.log"; }

absl::Status NatsServer::Launch() {
  DaemonOptions options;
  options.binary = binary_;
  options.args = {"-js", "-a", "127.0.0.1", "-p", absl::StrCat(port_), "-sd", dir_ + "/jetstream",
                  // A fixed name: the store is the same server's after a restart.
                  "--server_name", "txcoord-test-nats"};
  options.log_path = log_path();
  options.start_timeout = start_timeout_;
  options.ready_log_text = "Server is ready";
  absl::StatusOr<std::unique_ptr<DaemonProcess>> process = DaemonProcess::Start(options);
  if (!process.ok()) return process.status();
  process_ = std::move(*process);
  return absl::OkStatus();
}

absl::Status NatsServer::Kill9() {
  absl::MutexLock lock(&mu_);
  return process_ == nullptr ? absl::OkStatus() : process_->Kill9();
}

absl::Status NatsServer::Stop(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (process_ == nullptr) return absl::OkStatus();
  absl::StatusOr<ExitStatus> exit = process_->Terminate(timeout);
  return exit.status();
}

absl::Status NatsServer::Restart() {
  absl::MutexLock lock(&mu_);
  if (process_ != nullptr && process_->Running()) {
    return absl::FailedPreconditionError(
        absl::StrCat("nats-server on port ", port_, " is still running; stop or kill it first"));
  }
  process_.reset();
  return Launch();
}

bool NatsServer::Running() {
  absl::MutexLock lock(&mu_);
  return process_ != nullptr && process_->Running();
}

pid_t NatsServer::pid() {
  absl::MutexLock lock(&mu_);
  return process_ != nullptr && process_->Running() ? process_->pid() : 0;
}

std::string NatsServer::LogTail(size_t max_bytes) {
  absl::MutexLock lock(&mu_);
  if (process_ != nullptr) return process_->LogTail(max_bytes);
  return absl::StrCat("(nats-server not running; see ", log_path(), ")");
}

}  // namespace txcoord::testing
