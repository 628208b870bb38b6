#include "common/scheduler.h"

namespace txcoord {
namespace {

class RealTimeClock final : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
};

}  // namespace

Clock* RealClock() {
  static RealTimeClock* const clock = new RealTimeClock();
  return clock;
}

}  // namespace txcoord
