#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace txcoord {
namespace {
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
ABSL_CONST_INIT absl::Mutex g_tag_mu(absl::kConstInit);
std::string* g_tag ABSL_PT_GUARDED_BY(g_tag_mu) = new std::string("txcoord");

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARN";
    case LogLevel::kError:
      return "ERROR";
    case LogLevel::kFatal:
      return "FATAL";
  }
  return "?";
}
}  // namespace

void SetMinLogLevel(LogLevel level) { g_min_level = static_cast<int>(level); }
LogLevel MinLogLevel() { return static_cast<LogLevel>(g_min_level.load()); }

bool ParseLogLevel(const std::string& text, LogLevel* level) {
  if (text == "debug")
    *level = LogLevel::kDebug;
  else if (text == "info")
    *level = LogLevel::kInfo;
  else if (text == "warning" || text == "warn")
    *level = LogLevel::kWarning;
  else if (text == "error")
    *level = LogLevel::kError;
  else
    return false;
  return true;
}

void SetLogTag(const std::string& tag) {
  absl::MutexLock lock(&g_tag_mu);
  *g_tag = tag;
}

namespace internal {
LogLine::LogLine(LogLevel level, const char* file, int line) : level_(level) {
  const char* base = std::strrchr(file, '/');
  std::string tag;
  {
    absl::MutexLock lock(&g_tag_mu);
    tag = *g_tag;
  }
  stream_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()) << ' '
          << LevelName(level) << ' ' << tag << ' ' << (base ? base + 1 : file) << ':' << line
          << "] ";
}

LogLine::~LogLine() {
  stream_ << '\n';
  const std::string text = stream_.str();
  // One write keeps concurrent lines from interleaving.
  ssize_t unused = ::write(STDERR_FILENO, text.data(), text.size());
  (void)unused;
  if (level_ == LogLevel::kFatal) std::abort();
}
}  // namespace internal
}  // namespace txcoord
