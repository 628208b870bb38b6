#include "harness/etcd_server.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "harness/binaries.h"
#include "harness/free_port.h"
#include "rpc/grpc_util.h"

namespace txcoord::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kPortAttempts = 5;

// etcd logs this once its listeners serve, before it has a leader (which in
// a cluster needs the other members): AwaitAnswer waits for that.
constexpr char kListening[] = "now serving peer/client/metrics";

// 2 * members distinct ports.
absl::StatusOr<std::vector<int>> PickPorts(int count) {
  std::set<int> ports;
  for (int tries = 0; static_cast<int>(ports.size()) < count; ++tries) {
    if (tries > 10 * count) return absl::InternalError("no distinct free loopback ports");
    absl::StatusOr<int> port = PickFreeLoopbackPort();
    if (!port.ok()) return port.status();
    ports.insert(*port);
  }
  return std::vector<int>(ports.begin(), ports.end());
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdServer>> EtcdServer::Create(EtcdServerOptions options) {
  if (options.members < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd needs at least one member, not ", options.members));
  }
  absl::StatusOr<std::string> binary = EtcdBinary();
  if (!binary.ok()) return binary.status();
  std::optional<TempDir> temp_dir;
  std::string dir = options.dir;
  if (dir.empty()) {
    absl::StatusOr<TempDir> created = TempDir::Create("etcd");
    if (!created.ok()) return created.status();
    dir = created->path();
    temp_dir = *std::move(created);
  }
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return absl::InternalError(absl::StrCat("create ", dir, ": ", error.message()));

  absl::Status last_error;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    absl::StatusOr<std::vector<int>> ports = PickPorts(2 * options.members);
    if (!ports.ok()) return ports.status();
    std::vector<Member> members(options.members);
    for (int i = 0; i < options.members; ++i) {
      members[i].name = absl::StrCat("m", i);
      members[i].client_port = (*ports)[2 * i];
      members[i].peer_port = (*ports)[2 * i + 1];
      members[i].endpoint = absl::StrCat("127.0.0.1:", members[i].client_port);
      // A new cluster: whatever an earlier attempt (other ports) left goes.
      fs::remove_all(fs::path(dir) / members[i].name, error);
    }
    std::unique_ptr<EtcdServer> server(
        new EtcdServer(*binary, dir, options.start_timeout, std::move(members)));
    {
      absl::MutexLock lock(&server->mu_);
      std::vector<int> all(options.members);
      for (int i = 0; i < options.members; ++i) all[i] = i;
      last_error = server->StartLocked(all);
    }
    if (last_error.ok()) {
      server->temp_dir_ = std::move(temp_dir);
      return server;
    }
    // Someone else bound a port between our pick and etcd's bind (the
    // error quotes the end of the member's log).
    if (!absl::StrContains(last_error.message(), "address already in use")) break;
  }
  return last_error;
}

EtcdServer::EtcdServer(std::string binary, std::string dir, absl::Duration start_timeout,
                       std::vector<Member> members)
    : binary_(std::move(binary)),
      dir_(std::move(dir)),
      start_timeout_(start_timeout),
      members_(std::move(members)),
      initial_cluster_(absl::StrJoin(members_, ",",
                                     [](std::string* out, const Member& member) {
                                       absl::StrAppend(out, member.name,
                                                       "=http://127.0.0.1:", member.peer_port);
                                     })),
      cluster_token_(absl::StrCat("txcoord-test-", getpid(), "-", members_[0].client_port)),
      processes_(members_.size()) {}

EtcdServer::~EtcdServer() {
  // Each DaemonProcess kills its member if it still runs.
  absl::MutexLock lock(&mu_);
  processes_.clear();
}

const std::string& EtcdServer::endpoint(int member) const { return members_.at(member).endpoint; }

std::vector<std::string> EtcdServer::endpoints() const {
  std::vector<std::string> result;
  for (const Member& member : members_) result.push_back(member.endpoint);
  return result;
}

std::string EtcdServer::registry_url() const {
  return absl::StrCat("etcd://", absl::StrJoin(endpoints(), ","));
}

std::string EtcdServer::log_path(int member) const {
  return absl::StrCat(dir_, "/etcd-", members_.at(member).name, ".log");
}

absl::Status EtcdServer::CheckMember(int member) const {
  if (member < 0 || member >= members()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no etcd member ", member, "; there are ", members()));
  }
  return absl::OkStatus();
}

absl::Status EtcdServer::Launch(int member) {
  const Member& m = members_[member];
  const std::string client_url = absl::StrCat("http://127.0.0.1:", m.client_port);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", m.peer_port);
  DaemonOptions options;
  options.binary = binary_;
  // The --initial-* flags matter on the first start only; later starts
  // read the membership from the data directory.
  options.args = {"--name", m.name, "--data-dir", absl::StrCat(dir_, "/", m.name),
                  "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                  "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                  "--initial-cluster", initial_cluster_, "--initial-cluster-state", "new",
                  "--initial-cluster-token", cluster_token_,
                  // etcd 3.4's default logger is deprecated and says so.
                  "--logger", "zap", "--log-outputs", "stderr"};
  options.log_path = log_path(member);
  options.start_timeout = start_timeout_;
  options.ready_log_text = kListening;
  absl::StatusOr<std::unique_ptr<DaemonProcess>> process = DaemonProcess::Start(options);
  if (!process.ok()) return process.status();
  processes_[member] = std::move(*process);
  return absl::OkStatus();
}

absl::Status EtcdServer::AwaitAnswer(int member, absl::Time deadline) {
  const Member& m = members_[member];
  DaemonProcess* process = processes_[member].get();
  auto kv = etcdserverpb::KV::NewStub(MakeChannel(m.endpoint));
  grpc::Status last;
  for (;;) {
    if (!process->Running()) {
      return absl::UnavailableError(
          absl::StrCat("etcd ", m.name, " exited before it answered\n---- ", log_path(member),
                       " ends with:\n", process->LogTail()));
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("etcd ", m.name, " at ", m.endpoint, " did not answer within ",
                       absl::FormatDuration(start_timeout_), " (last: ", last.error_message(),
                       ")\n---- ", log_path(member), " ends with:\n", process->LogTail()));
    }
    // A linearizable read, as `etcdctl endpoint health` does: answered once
    // the member has a leader and has applied its log. Each try waits for
    // the connection and the answer up to a second.
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(absl::ToChronoTime(std::min(deadline, now + absl::Seconds(1))));
    etcdserverpb::RangeRequest request;
    request.set_key("health");
    etcdserverpb::RangeResponse response;
    last = kv->Range(&context, request, &response);
    if (last.ok()) return absl::OkStatus();
    // Refusals while it starts ("not capable", "leader changed") come at
    // once: look again a little later rather than spin.
    if (last.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
}

absl::Status EtcdServer::StartLocked(const std::vector<int>& which) {
  const absl::Time deadline = absl::Now() + start_timeout_;
  // All processes first: a member of a cluster answers only once a quorum
  // runs.
  for (int member : which) {
    if (processes_[member] != nullptr && processes_[member]->Running()) continue;
    processes_[member].reset();
    if (absl::Status launched = Launch(member); !launched.ok()) return launched;
  }
  for (int member : which) {
    if (absl::Status answered = AwaitAnswer(member, deadline); !answered.ok()) return answered;
  }
  return absl::OkStatus();
}

absl::Status EtcdServer::Start() {
  absl::MutexLock lock(&mu_);
  std::vector<int> all(members_.size());
  for (int i = 0; i < members(); ++i) all[i] = i;
  return StartLocked(all);
}

absl::Status EtcdServer::StartMember(int member) {
  if (absl::Status valid = CheckMember(member); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  return StartLocked({member});
}

absl::Status EtcdServer::StopMember(int member) {
  if (absl::Status valid = CheckMember(member); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (processes_[member] == nullptr) return absl::OkStatus();
  // etcd re-raises SIGTERM once it has shut down: "killed by signal 15"
  // is its clean exit.
  return processes_[member]->Terminate(absl::Seconds(15)).status();
}

absl::Status EtcdServer::KillMember(int member) {
  if (absl::Status valid = CheckMember(member); !valid.ok()) return valid;
  absl::MutexLock lock(&mu_);
  if (processes_[member] == nullptr) return absl::OkStatus();
  return processes_[member]->Kill9();
}

absl::Status EtcdServer::Stop() {
  absl::Status result;
  for (int i = 0; i < members(); ++i) result.Update(StopMember(i));
  return result;
}

absl::Status EtcdServer::Kill() {
  absl::Status result;
  for (int i = 0; i < members(); ++i) result.Update(KillMember(i));
  return result;
}

bool EtcdServer::Running(int member) {
  if (!CheckMember(member).ok()) return false;
  absl::MutexLock lock(&mu_);
  return processes_[member] != nullptr && processes_[member]->Running();
}

std::string EtcdServer::LogTail(int member, size_t max_bytes) {
  if (!CheckMember(member).ok()) return "";
  absl::MutexLock lock(&mu_);
  if (processes_[member] != nullptr) return processes_[member]->LogTail(max_bytes);
  return absl::StrCat("(etcd ", members_[member].name, " never started; see ", log_path(member),
                      ")");
}

}  // namespace txcoord::testing
