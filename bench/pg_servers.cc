#include "bench/pg_servers.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bench/proc_stats.h"
#include "harness/free_port.h"
#include "harness/spawn.h"

namespace txcoord::bench {
namespace {

namespace fs = std::filesystem;

constexpr int kPortAttempts = 5;
constexpr char kReady[] = "database system is ready to accept connections";
constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kStopTimeout = absl::Seconds(30);

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// The uid and gid to run the servers as, if not ours: PostgreSQL refuses to
// run as root.
struct RunAs {
  bool other_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<std::string> prefix;  // argv before the program's own
};

absl::StatusOr<RunAs> ServerUser() {
  RunAs run_as;
  if (geteuid() != 0) return run_as;
  const passwd* user = getpwnam("postgres");
  if (user == nullptr) {
    return absl::FailedPreconditionError(
        "PostgreSQL does not run as root and there is no `postgres` user to run it as (Debian's "
        "postgresql package creates one)");
  }
  std::string setpriv;
  for (const char* candidate : {"/usr/bin/setpriv", "/bin/setpriv"}) {
    if (Executable(candidate)) setpriv = candidate;
  }
  if (setpriv.empty()) return absl::NotFoundError("setpriv (util-linux) not found");
  run_as.other_user = true;
  run_as.uid = user->pw_uid;
  run_as.gid = user->pw_gid;
  // setpriv changes the user and execs the program in place, so the pid
  // we hold is the server's own.
  run_as.prefix = {setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups"};
  return run_as;
}

std::string Tail(const std::string& path, size_t max_bytes = 2000) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() <= max_bytes ? all : all.substr(all.size() - max_bytes);
}

// A program to run to its end, with its output in a log file.
struct Command {
  std::string name;  // for errors
  std::vector<std::string> argv;
  std::string log;
};

// Runs the commands at once and waits for all of them; the error quotes
// the log of the first that failed.
absl::Status RunAll(const std::vector<Command>& commands) {
  std::vector<pid_t> pids;
  absl::Status error;
  for (const Command& command : commands) {
    const int log = open(command.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log < 0) {
      error = absl::InternalError(absl::StrCat("open ", command.log, ": ", std::strerror(errno)));
      break;
    }
    absl::StatusOr<pid_t> pid = testing::SpawnChild(command.argv, log, log, log);
    close(log);
    if (!pid.ok()) {
      error = pid.status();
      break;
    }
    pids.push_back(*pid);
  }
  for (size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) {
    }
    if (error.ok() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      error = absl::InternalError(absl::StrCat(commands[i].name, " failed:\n---- ", commands[i].log,
                                               "\n", Tail(commands[i].log)));
    }
  }
  return error;
}

// initdb once, then copies of the result for the other servers: an initdb
// costs about a second of CPU, a copy of its 40 MB a tenth of that.
absl::Status InitDataDirs(const std::string& bin_dir, const RunAs& run_as,
                          const std::vector<std::string>& data_dirs) {
  Command initdb{"initdb", run_as.prefix, data_dirs[0] + ".initdb.log"};
  // No sync of the fresh files: they are thrown away after the run, and
  // the server itself runs with fsync=on.
  initdb.argv.insert(initdb.argv.end(),
                     {bin_dir + "/initdb", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync", "--no-instructions", "-D", data_dirs[0]});
  if (absl::Status s = RunAll({initdb}); !s.ok()) return s;
  std::vector<Command> copies;
  for (size_t i = 1; i < data_dirs.size(); ++i) {
    Command copy{"copying the data directory", run_as.prefix, data_dirs[i] + ".copy.log"};
    copy.argv.insert(copy.argv.end(), {"/bin/cp", "-a", data_dirs[0], data_dirs[i]});
    copies.push_back(std::move(copy));
  }
  return RunAll(copies);
}

}  // namespace

absl::StatusOr<std::string> PgBinDir() {
  auto complete = [](const std::string& dir) {
    return Executable(dir + "/initdb") && Executable(dir + "/postgres");
  };
  if (const char* env = std::getenv("PG_BIN_DIR"); env != nullptr && *env != '\0') {
    if (complete(env)) return std::string(env);
    return absl::NotFoundError(absl::StrCat("no initdb and postgres in $PG_BIN_DIR (", env, ")"));
  }
  std::vector<std::pair<int, std::string>> found;  // (major version, bin dir)
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator("/usr/lib/postgresql", error)) {
    const std::string bin = (entry.path() / "bin").string();
    if (complete(bin)) found.emplace_back(std::atoi(entry.path().filename().c_str()), bin);
  }
  if (found.empty()) {
    return absl::NotFoundError(
        "PostgreSQL's server programs not found in /usr/lib/postgresql/*/bin or $PG_BIN_DIR "
        "(Debian package postgresql: scripts/install-deps --bench-pg)");
  }
  return std::max_element(found.begin(), found.end())->second;
}

absl::StatusOr<std::unique_ptr<PgServers>> PgServers::Start(const PgServersOptions& options) {
  absl::StatusOr<std::string> bin_dir = PgBinDir();
  if (!bin_dir.ok()) return bin_dir.status();
  absl::StatusOr<RunAs> run_as = ServerUser();
  if (!run_as.ok()) return run_as.status();
  absl::StatusOr<testing::TempDir> dir = testing::TempDir::Create("pg2pc");
  if (!dir.ok()) return dir.status();
  if (options.keep_dir) dir->Keep();
  // The server's user creates its data directories in this one.
  if (run_as->other_user && chown(dir->path().c_str(), run_as->uid, run_as->gid) != 0) {
    return absl::InternalError(absl::StrCat("chown ", dir->path(), ": ", std::strerror(errno)));
  }
  std::unique_ptr<PgServers> servers(new PgServers(*std::move(dir)));
  std::vector<std::string> data_dirs;
  for (int i = 0; i < options.servers; ++i) {
    data_dirs.push_back(servers->dir_.Path(absl::StrCat("pg", i)));
  }
  if (absl::Status init = InitDataDirs(*bin_dir, *run_as, data_dirs); !init.ok()) return init;

  for (int i = 0; i < options.servers; ++i) {
    absl::Status started;
    for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
      absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
      if (!port.ok()) return port.status();
      // Durable commits (the defaults, stated so that the run says so);
      // loopback TCP only, no Unix socket (its default directory belongs
      // to the system's own server).
      const std::vector<std::string> settings = {
          "listen_addresses=127.0.0.1",
          "unix_socket_directories=",
          absl::StrCat("max_connections=", options.max_connections),
          absl::StrCat("max_prepared_transactions=", options.max_prepared_transactions),
          "fsync=on",
          "synchronous_commit=on",
          "full_page_writes=on",
      };
      std::vector<std::string> argv = run_as->prefix;
      argv.push_back(*bin_dir + "/postgres");
      argv.insert(argv.end(), {"-D", data_dirs[i], "-p", absl::StrCat(*port)});
      for (const std::string& setting : settings) argv.insert(argv.end(), {"-c", setting});
      testing::DaemonOptions daemon;
      daemon.binary = argv.front();
      daemon.args.assign(argv.begin() + 1, argv.end());
      daemon.log_path = servers->dir_.Path(absl::StrCat("pg", i, ".log"));
      daemon.ready_log_text = kReady;
      daemon.start_timeout = kStartTimeout;
      absl::StatusOr<std::unique_ptr<testing::DaemonProcess>> process =
          testing::DaemonProcess::Start(daemon);
      if (process.ok()) {
        servers->servers_.push_back({*port, *std::move(process)});
        started = absl::OkStatus();
        break;
      }
      started = process.status();
      // Another program took the port between our pick and the bind.
      if (!absl::StrContains(started.message(), "Address already in use")) break;
    }
    if (!started.ok()) return started;
  }
  return servers;
}

PgServers::~PgServers() { (void)Stop(); }

std::string PgServers::conninfo(int i) const {
  return absl::StrCat("host=127.0.0.1 port=", servers_.at(i).port,
                      " user=postgres dbname=postgres connect_timeout=10"
                      " application_name=pg2pc_bench");
}

absl::StatusOr<double> PgServers::CpuSeconds() const {
  double total = 0;
  for (const Server& server : servers_) {
    absl::StatusOr<double> seconds = ProcessTreeCpuSeconds(server.process->pid());
    if (!seconds.ok()) return seconds.status();
    total += *seconds;
  }
  return total;
}

absl::Status PgServers::Stop() {
  if (stopped_) return absl::OkStatus();
  stopped_ = true;
  // All at once, then wait for each: shutdowns run in parallel.
  for (Server& server : servers_) (void)server.process->Signal(SIGINT);
  absl::Status result;
  for (Server& server : servers_) {
    absl::StatusOr<testing::ExitStatus> exit = server.process->Wait(kStopTimeout);
    if (!exit.ok()) {
      (void)server.process->Kill9();
      if (result.ok()) result = exit.status();
    }
  }
  return result;
}

}  // namespace txcoord::bench
