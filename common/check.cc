#include "common/check.h"

#include <cstdlib>

#include "common/logging.h"

namespace txcoord::internal {

CheckFailure::~CheckFailure() {
  // A FATAL line is written whatever the minimum level, then aborts; the
  // abort below only tells the compiler so.
  const std::string message = stream_.str();
  LogLine(LogLevel::kFatal, file_, line_).stream()
      << "Check failed: " << condition_ << (message.empty() ? "" : ": ") << message;
  std::abort();
}

}  // namespace txcoord::internal
