// Minimal structured logging to stderr: one line per event, with a UTC
// timestamp, a level and the source location. Lines about a transaction
// carry "txid=<id>" so that `grep txid=<id>` follows it across daemons.
//
//   TXLOG(INFO) << "txid=" << txid << " committed";
#ifndef TXCOORD_COMMON_LOGGING_H_
#define TXCOORD_COMMON_LOGGING_H_

#include <sstream>
#include <string>

namespace txcoord {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kFatal = 4 };

// Lines below this level are dropped. Thread-safe.
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();
// Parses "debug", "info", "warning", "error"; false if none.
bool ParseLogLevel(const std::string& text, LogLevel* level);
// The process name printed on every line ("txcoord", "txagent/a1", ...).
void SetLogTag(const std::string& tag);

namespace internal {
// Collects one line and writes it atomically (one write(2)) when destroyed.
// A kFatal line aborts the process after writing.
class LogLine final {
 public:
  LogLine(LogLevel level, const char* file, int line);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal
}  // namespace txcoord

#define TXLOG_LEVEL_DEBUG ::txcoord::LogLevel::kDebug
#define TXLOG_LEVEL_INFO ::txcoord::LogLevel::kInfo
#define TXLOG_LEVEL_WARNING ::txcoord::LogLevel::kWarning
#define TXLOG_LEVEL_ERROR ::txcoord::LogLevel::kError
#define TXLOG_LEVEL_FATAL ::txcoord::LogLevel::kFatal

#define TXLOG(level)                                    \
  if (TXLOG_LEVEL_##level < ::txcoord::MinLogLevel()) { \
  } else                                                \
    ::txcoord::internal::LogLine(TXLOG_LEVEL_##level, __FILE__, __LINE__).stream()

#endif  // TXCOORD_COMMON_LOGGING_H_
