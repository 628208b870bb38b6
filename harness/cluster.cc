#include "harness/cluster.h"

#include <signal.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "harness/binaries.h"

namespace txcoord::testing {
namespace {

// A first start asks for a free port (":0"); a restart must come back on
// the same one, because peers (agents, the coordinator's phase-2 retries,
// clients) only know the old address.
std::string ListenFlag(const std::string& address) {
  return absl::StrCat("--listen=", address.empty() ? "127.0.0.1:0" : address);
}

// The same for the framed port, when the daemon serves one.
void AddFramedFlag(bool framed, const std::string& address, DaemonOptions* daemon) {
  if (!framed) return;
  daemon->framed = true;
  daemon->args.push_back(
      absl::StrCat("--framed_listen=", address.empty() ? "127.0.0.1:0" : address));
}

// The same for the HTTP port, when the cluster serves one.
void AddHttpFlag(bool http, const std::string& host, const std::string& address,
                 DaemonOptions* daemon) {
  if (!http) return;
  daemon->http = true;
  daemon->args.push_back(
      absl::StrCat("--http_listen=", address.empty() ? absl::StrCat(host, ":0") : address));
}

absl::Status Annotate(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cluster>> Cluster::Start(ClusterOptions options) {
  if (options.agents < 0) return absl::InvalidArgumentError("negative agent count");
  if (!options.agent_names.empty() &&
      options.agent_names.size() != static_cast<size_t>(options.agents)) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.agent_names.size(), " agent names for ", options.agents, " agents"));
  }
  if (options.coordinator_binary.empty()) {
    absl::StatusOr<std::string> binary = CoordinatorBinary();
    if (!binary.ok()) return binary.status();
    options.coordinator_binary = *binary;
  }
  if (options.agent_binary.empty() && options.agents > 0) {
    absl::StatusOr<std::string> binary = AgentBinary();
    if (!binary.ok()) return binary.status();
    options.agent_binary = *binary;
  }

  if (options.coordinators < 1) return absl::InvalidArgumentError("no coordinator");
  if (!options.coordinator_ids.empty() &&
      options.coordinator_ids.size() != static_cast<size_t>(options.coordinators)) {
    return absl::InvalidArgumentError(absl::StrCat(options.coordinator_ids.size(),
                                                   " coordinator ids for ", options.coordinators,
                                                   " coordinators"));
  }
  std::unique_ptr<Cluster> cluster(new Cluster(std::move(options)));
  const ClusterOptions& opts = cluster->options_;
  if (opts.dir.empty()) {
    absl::StatusOr<TempDir> temp = TempDir::Create("cluster");
    if (!temp.ok()) return temp.status();
    cluster->dir_ = temp->path();
    cluster->temp_dir_.emplace(*std::move(temp));
    if (opts.keep_dir) cluster->temp_dir_->Keep();
  } else {
    cluster->dir_ = opts.dir;
  }
  for (int i = 0; i < opts.coordinators; ++i) {
    Coordinator& coordinator = cluster->coordinators_.emplace_back();
    coordinator.id = !opts.coordinator_ids.empty() ? opts.coordinator_ids[i]
                     : i == 0                      ? opts.cluster_id
                                                   : absl::StrCat("c", i);
    std::error_code error;
    std::filesystem::create_directories(cluster->coordinator_data_dir(i), error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("mkdir ", cluster->coordinator_data_dir(i), ": ", error.message()));
    }
  }

  for (int i = 0; i < opts.agents; ++i) {
    Agent& agent = cluster->agents_.emplace_back();
    agent.name = opts.agent_names.empty() ? absl::StrCat("agent", i) : opts.agent_names[i];
  }
  for (int i = 0; i < opts.coordinators; ++i) {
    if (absl::Status status = cluster->StartCoordinator(i); !status.ok()) return status;
  }
  for (int i = 0; i < opts.agents; ++i) {
    if (absl::Status status = cluster->StartAgent(i); !status.ok()) return status;
  }
  return cluster;
}

Cluster::~Cluster() {
  // Agents first: they would otherwise log a burst of failed calls to a
  // vanished coordinator. SIGKILL: teardown must be quick and certain.
  for (Agent& agent : agents_) agent.process.reset();
  for (Coordinator& coordinator : coordinators_) coordinator.process.reset();
}

// Coordinator 0 keeps the names it had when there was only one.
std::string Cluster::coordinator_data_dir(int i) const {
  return i == 0 ? absl::StrCat(dir_, "/coordinator") : absl::StrCat(dir_, "/coordinator", i);
}
std::string Cluster::coordinator_log(int i) const {
  return i == 0 ? absl::StrCat(dir_, "/coordinator.log")
                : absl::StrCat(dir_, "/coordinator", i, ".log");
}
std::string Cluster::agent_db(int i) const {
  return absl::StrCat(dir_, "/", agents_.at(i).name, ".db");
}
std::string Cluster::agent_log(int i) const {
  return absl::StrCat(dir_, "/", agents_.at(i).name, ".log");
}

std::vector<std::string> Cluster::agent_addresses() const {
  std::vector<std::string> addresses;
  for (const Agent& agent : agents_) addresses.push_back(agent.address);
  return addresses;
}

std::vector<std::string> Cluster::agent_dbs() const {
  std::vector<std::string> dbs;
  for (int i = 0; i < agent_count(); ++i) dbs.push_back(agent_db(i));
  return dbs;
}

absl::Status Cluster::StartCoordinator(int i) {
  Coordinator& coordinator = coordinators_.at(i);
  const std::string what = i == 0 ? "the coordinator" : absl::StrCat("coordinator ", i);
  if (coordinator.process != nullptr && coordinator.process->Running()) {
    return absl::FailedPreconditionError(absl::StrCat(what, " is already running"));
  }
  DaemonOptions daemon;
  daemon.binary = options_.coordinator_binary;
  daemon.args = {ListenFlag(coordinator.address),
                 absl::StrCat("--data-dir=", coordinator_data_dir(i))};
  if (!coordinator.id.empty()) daemon.args.push_back(absl::StrCat("--cluster-id=", coordinator.id));
  AddHttpFlag(options_.http, options_.http_host, coordinator.http_address, &daemon);
  AddFramedFlag(options_.coordinator_framed_port, coordinator.framed_address, &daemon);
  daemon.args.insert(daemon.args.end(), options_.coordinator_flags.begin(),
                     options_.coordinator_flags.end());
  if (static_cast<size_t>(i) < options_.per_coordinator_flags.size()) {
    const std::vector<std::string>& own = options_.per_coordinator_flags[i];
    daemon.args.insert(daemon.args.end(), own.begin(), own.end());
  }
  daemon.args.insert(daemon.args.end(), coordinator.extra_flags.begin(),
                     coordinator.extra_flags.end());
  daemon.log_path = coordinator_log(i);
  daemon.start_timeout = options_.start_timeout;
  coordinator.process.reset();  // reaps a coordinator that died on its own
  absl::StatusOr<std::unique_ptr<DaemonProcess>> process = DaemonProcess::Start(std::move(daemon));
  if (!process.ok()) return Annotate(process.status(), absl::StrCat("starting ", what));
  coordinator.process = *std::move(process);
  coordinator.address = coordinator.process->address();
  coordinator.http_address = coordinator.process->http_address();
  coordinator.framed_address = coordinator.process->framed_address();
  return absl::OkStatus();
}

absl::Status Cluster::StartAgent(int i) {
  Agent& agent = agents_.at(i);
  if (agent.process != nullptr && agent.process->Running()) {
    return absl::FailedPreconditionError(absl::StrCat("agent ", agent.name, " is already running"));
  }
  DaemonOptions daemon;
  daemon.binary = options_.agent_binary;
  daemon.args = {absl::StrCat("--db=", agent_db(i)), ListenFlag(agent.address),
                 absl::StrCat("--coordinator=", coordinator_address(0)),
                 absl::StrCat("--name=", agent.name)};
  AddHttpFlag(options_.http, options_.http_host, agent.http_address, &daemon);
  AddFramedFlag(options_.agent_framed_port, agent.framed_address, &daemon);
  daemon.args.insert(daemon.args.end(), options_.agent_flags.begin(), options_.agent_flags.end());
  if (static_cast<size_t>(i) < options_.per_agent_flags.size()) {
    const std::vector<std::string>& own = options_.per_agent_flags[i];
    daemon.args.insert(daemon.args.end(), own.begin(), own.end());
  }
  daemon.args.insert(daemon.args.end(), agent.extra_flags.begin(), agent.extra_flags.end());
  daemon.log_path = agent_log(i);
  daemon.start_timeout = options_.start_timeout;
  agent.process.reset();
  absl::StatusOr<std::unique_ptr<DaemonProcess>> process = DaemonProcess::Start(std::move(daemon));
  if (!process.ok()) return Annotate(process.status(), absl::StrCat("starting agent ", agent.name));
  agent.process = *std::move(process);
  agent.address = agent.process->address();
  agent.http_address = agent.process->http_address();
  agent.framed_address = agent.process->framed_address();
  return absl::OkStatus();
}

absl::Status Cluster::Stop(std::unique_ptr<DaemonProcess>* process) {
  if (*process == nullptr) return absl::OkStatus();
  if (absl::Status status = (*process)->Signal(SIGTERM); !status.ok()) return status;
  return AwaitExit(process);
}

absl::Status Cluster::AwaitExit(std::unique_ptr<DaemonProcess>* process) {
  if (*process == nullptr) return absl::OkStatus();
  DaemonProcess& daemon = **process;
  absl::StatusOr<ExitStatus> exit = daemon.Wait(options_.stop_timeout);
  absl::Status status;
  if (absl::IsDeadlineExceeded(exit.status())) {
    (void)daemon.Kill9();
    status = absl::DeadlineExceededError(absl::StrCat("pid ", daemon.pid(), " did not exit within ",
                                                      absl::FormatDuration(options_.stop_timeout),
                                                      " of SIGTERM; killed it"));
  } else if (!exit.ok()) {
    status = exit.status();
  } else if (!exit->Clean()) {
    status = absl::InternalError(absl::StrCat("pid ", daemon.pid(), " ended with ",
                                              exit->ToString(), "; ", daemon.log_path(),
                                              " ends with:\n", daemon.LogTail()));
  }
  process->reset();
  return status;
}

absl::Status Cluster::Kill(std::unique_ptr<DaemonProcess>* process) {
  if (*process == nullptr) return absl::OkStatus();
  absl::Status status = (*process)->Kill9();
  process->reset();
  return status;
}

absl::Status Cluster::StopCoordinator(int i) {
  return Annotate(Stop(&coordinators_.at(i).process),
                  i == 0 ? "stopping the coordinator" : absl::StrCat("stopping coordinator ", i));
}
absl::Status Cluster::KillCoordinator(int i) {
  return Annotate(Kill(&coordinators_.at(i).process),
                  i == 0 ? "killing the coordinator" : absl::StrCat("killing coordinator ", i));
}

absl::Status Cluster::RestartCoordinator(int i) {
  if (absl::Status status = StopCoordinator(i); !status.ok()) return status;
  return StartCoordinator(i);
}

absl::Status Cluster::StopAgent(int i) {
  return Annotate(Stop(&agents_.at(i).process),
                  absl::StrCat("stopping agent ", agents_.at(i).name));
}

absl::Status Cluster::KillAgent(int i) {
  return Annotate(Kill(&agents_.at(i).process), absl::StrCat("killing agent ", agents_.at(i).name));
}

absl::Status Cluster::RestartAgent(int i) {
  if (absl::Status status = StopAgent(i); !status.ok()) return status;
  return StartAgent(i);
}

absl::Status Cluster::CheckRunning() {
  std::vector<std::string> dead;
  auto check = [&dead](const std::string& what, DaemonProcess* process) {
    if (process == nullptr || process->Running()) return;
    absl::StatusOr<ExitStatus> exit = process->Wait(absl::ZeroDuration());
    dead.push_back(absl::StrCat(what, " (pid ", process->pid(), ") died: ",
                                exit.ok() ? exit->ToString() : std::string(exit.status().message()),
                                "; ", process->log_path(), " ends with:\n", process->LogTail()));
  };
  for (size_t i = 0; i < coordinators_.size(); ++i) {
    check(i == 0 ? "coordinator" : absl::StrCat("coordinator ", i), coordinators_[i].process.get());
  }
  for (Agent& agent : agents_) check(absl::StrCat("agent ", agent.name), agent.process.get());
  if (dead.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrJoin(dead, "\n"));
}

absl::Status Cluster::StopAll() {
  // SIGTERM to all first, then wait: the daemons shut down in parallel, so
  // stopping takes as long as the slowest one, not the sum.
  std::vector<std::string> errors;
  auto signal = [&errors](const std::string& what, DaemonProcess* process) {
    if (process == nullptr) return;
    if (absl::Status status = process->Signal(SIGTERM); !status.ok()) {
      errors.push_back(absl::StrCat(what, ": ", status.message()));
    }
  };
  for (Agent& agent : agents_) signal(absl::StrCat("agent ", agent.name), agent.process.get());
  for (size_t i = 0; i < coordinators_.size(); ++i) {
    signal(i == 0 ? "coordinator" : absl::StrCat("coordinator ", i),
           coordinators_[i].process.get());
  }
  for (Agent& agent : agents_) {
    if (absl::Status status = AwaitExit(&agent.process); !status.ok()) {
      errors.push_back(absl::StrCat("stopping agent ", agent.name, ": ", status.message()));
    }
  }
  for (size_t i = 0; i < coordinators_.size(); ++i) {
    if (absl::Status status = AwaitExit(&coordinators_[i].process); !status.ok()) {
      errors.push_back(absl::StrCat("stopping coordinator ", i, ": ", status.message()));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrJoin(errors, "\n"));
}

void Cluster::KeepDir() {
  if (temp_dir_.has_value()) temp_dir_->Keep();
}

}  // namespace txcoord::testing
