#include "harness/binaries.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace txcoord::testing {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> FindBinary(const char* env_var, const std::string& relative_path) {
  if (const char* from_env = std::getenv(env_var); from_env != nullptr && *from_env != '\0') {
    if (access(from_env, X_OK) != 0) {
      return absl::NotFoundError(
          absl::StrCat(env_var, "=", from_env, " is not an executable file"));
    }
    return std::string(from_env);
  }
  absl::StatusOr<std::string> build_dir = BuildDir();
  if (!build_dir.ok()) {
    return absl::NotFoundError(
        absl::StrCat(build_dir.status().message(), "; set ", env_var, " to the binary's path"));
  }
  std::string path = (fs::path(*build_dir) / relative_path).string();
  if (access(path.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(path,
                                            " is missing or not executable (build it, or set ",
                                            env_var, " to the binary's path)"));
  }
  return path;
}

// A program from a Debian package: $`env_var` if set, else the first
// `name` in $PATH, /usr/sbin or /usr/bin. NOT_FOUND names the package.
absl::StatusOr<std::string> FindSystemBinary(const char* env_var, const std::string& name,
                                             const std::string& package) {
  if (const char* from_env = std::getenv(env_var); from_env != nullptr && *from_env != '\0') {
    if (access(from_env, X_OK) != 0) {
      return absl::NotFoundError(
          absl::StrCat(env_var, "=", from_env, " is not an executable file"));
    }
    return std::string(from_env);
  }
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    dirs = absl::StrSplit(path, ':', absl::SkipEmpty());
  }
  // Daemons may run with a PATH that lacks the sbin directories.
  dirs.push_back("/usr/sbin");
  dirs.push_back("/usr/bin");
  for (const std::string& dir : dirs) {
    std::string candidate = (fs::path(dir) / name).string();
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(name,
                                          " not found in $PATH, /usr/sbin or /usr/bin: install the "
                                          "Debian package ",
                                          package, " (scripts/install-deps does), or set ", env_var,
                                          " to its path"));
}

}  // namespace

absl::StatusOr<std::string> BuildDir() {
  std::error_code error;
  fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (error) {
    return absl::NotFoundError(absl::StrCat("cannot read /proc/self/exe: ", error.message()));
  }
  for (fs::path dir = exe.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / "CMakeCache.txt", error)) return dir.string();
    if (dir == dir.root_path()) break;
  }
  return absl::NotFoundError(
      absl::StrCat("no CMake build directory (with CMakeCache.txt) above ", exe.string()));
}

absl::StatusOr<std::string> CoordinatorBinary() {
  return FindBinary("TXCOORD_BIN", "coordinator/txcoord");
}

absl::StatusOr<std::string> AgentBinary() { return FindBinary("TXAGENT_BIN", "agent/txagent"); }

absl::StatusOr<std::string> EventCounterBinary() {
  return FindBinary("EVENT_COUNTER_BIN", "examples/event_counter");
}

absl::StatusOr<std::string> NatsServerBinary() {
  return FindSystemBinary("NATS_SERVER_BIN", "nats-server", "nats-server");
}

absl::StatusOr<std::string> EtcdBinary() {
  return FindSystemBinary("ETCD_BIN", "etcd", "etcd-server");
}

}  // namespace txcoord::testing
