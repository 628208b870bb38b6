#include "bench/proc_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace txcoord::bench {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// /proc/PID/stat: the command name (field 2), and the fields from 3
// (state) on: field N is fields[N - 3].
struct Stat {
  std::string comm;
  std::vector<std::string> fields;
};

absl::StatusOr<Stat> ReadStat(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return stat.status();
  // The command name may contain spaces and parentheses: it runs from the
  // first '(' to the last ')', and the fixed fields start after that.
  const size_t open = stat->find('(');
  const size_t close = stat->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      close + 2 > stat->size()) {
    return absl::InternalError("malformed /proc/PID/stat");
  }
  Stat parsed;
  parsed.comm = stat->substr(open + 1, close - open - 1);
  parsed.fields = absl::StrSplit(stat->substr(close + 2), ' ', absl::SkipEmpty());
  if (parsed.fields.size() < 15) return absl::InternalError("malformed /proc/PID/stat");
  return parsed;
}

// Sum of the clock-tick fields `first`..`last` (numbered as in proc(5)).
absl::StatusOr<double> TickSeconds(const std::vector<std::string>& fields, int first, int last) {
  int64_t ticks = 0;
  for (int field = first; field <= last; ++field) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(fields[field - 3], &value)) {
      return absl::InternalError("malformed /proc/PID/stat");
    }
    ticks += value;
  }
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Process {
  pid_t pid = 0;
  pid_t parent = 0;  // field 4
  std::string comm;
};

// Every process there is, from /proc/*/stat.
std::vector<Process> AllProcesses() {
  std::vector<Process> processes;
  std::error_code error;
  for (const std::filesystem::directory_entry& entry :
       std::filesystem::directory_iterator("/proc", error)) {
    Process process;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &process.pid)) continue;
    absl::StatusOr<Stat> stat = ReadStat(process.pid);
    if (!stat.ok() || !absl::SimpleAtoi(stat->fields[1], &process.parent)) continue;  // gone
    process.comm = std::move(stat->comm);
    processes.push_back(std::move(process));
  }
  return processes;
}

}  // namespace

absl::StatusOr<double> ProcessCpuSeconds(pid_t pid) {
  absl::StatusOr<Stat> stat = ReadStat(pid);
  if (!stat.ok()) return stat.status();
  return TickSeconds(stat->fields, 14, 15);  // utime, stime
}

absl::StatusOr<double> ProcessTreeCpuSeconds(pid_t pid) {
  absl::StatusOr<Stat> root = ReadStat(pid);
  if (!root.ok()) return root.status();
  // utime, stime, and cutime, cstime: what its reaped children used.
  absl::StatusOr<double> total = TickSeconds(root->fields, 14, 17);
  if (!total.ok()) return total.status();
  const std::vector<Process> processes = AllProcesses();
  std::vector<pid_t> frontier = {pid};
  while (!frontier.empty()) {
    const pid_t parent = frontier.back();
    frontier.pop_back();
    for (const Process& process : processes) {
      if (process.parent != parent) continue;
      const pid_t child = process.pid;
      frontier.push_back(child);
      // A child that exits between the scan and this read has its CPU
      // counted in its parent's cutime once reaped, or not at all if the
      // reaping falls after the parent was read: a tick or two per window.
      absl::StatusOr<Stat> stat = ReadStat(child);
      if (!stat.ok()) continue;
      absl::StatusOr<double> seconds = TickSeconds(stat->fields, 14, 17);
      if (seconds.ok()) *total += *seconds;
    }
  }
  return total;
}

namespace {
// User and system CPU of RUSAGE_SELF or RUSAGE_THREAD.
double UsageCpuSeconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}
}  // namespace

double SelfCpuSeconds() { return UsageCpuSeconds(RUSAGE_SELF); }
double ThreadCpuSeconds() { return UsageCpuSeconds(RUSAGE_THREAD); }

absl::StatusOr<int64_t> ResidentBytes(pid_t pid) {
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return status.status();
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, "VmRSS:")) continue;
    line = absl::StripAsciiWhitespace(line);
    int64_t kib = 0;
    if (!absl::ConsumeSuffix(&line, " kB") ||
        !absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kib)) {
      break;
    }
    return kib * 1024;
  }
  return absl::InternalError(absl::StrCat("no VmRSS in /proc/", pid, "/status"));
}

absl::StatusOr<MachineCpu> MachineCpuSeconds() {
  absl::StatusOr<std::string> text = ReadFile("/proc/stat");
  if (!text.ok()) return text.status();
  const std::string first_line = text->substr(0, text->find('\n'));
  const std::vector<std::string> fields = absl::StrSplit(first_line, ' ', absl::SkipEmpty());
  // "cpu user nice system idle iowait irq softirq steal ...", in ticks.
  if (fields.size() < 9 || fields[0] != "cpu") return absl::InternalError("malformed /proc/stat");
  MachineCpu cpu;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  for (size_t i = 1; i <= 8; ++i) {
    int64_t ticks = 0;
    if (!absl::SimpleAtoi(fields[i], &ticks)) return absl::InternalError("malformed /proc/stat");
    cpu.total += static_cast<double>(ticks) / tick;
    if (i != 4 && i != 5) cpu.busy += static_cast<double>(ticks) / tick;
  }
  return cpu;
}

std::vector<pid_t> ChildProcesses(const std::string& comm) {
  std::vector<pid_t> pids;
  for (const Process& process : AllProcesses()) {
    if (process.comm == comm && process.parent == getpid()) pids.push_back(process.pid);
  }
  return pids;
}

std::string LoadAverage() {
  absl::StatusOr<std::string> text = ReadFile("/proc/loadavg");
  if (!text.ok()) return "?";
  std::vector<std::string> fields = absl::StrSplit(*text, ' ', absl::SkipEmpty());
  if (fields.size() < 3) return "?";
  return absl::StrCat(fields[0], " ", fields[1], " ", fields[2]);
}

}  // namespace txcoord::bench
