#include "common/failpoint.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/logging.h"

namespace txcoord {
namespace internal {
std::atomic<bool> g_failpoints_enabled{false};
}  // namespace internal

namespace {

enum class Action { kCrash, kStall, kDelay };

struct Failpoint {
  Action action = Action::kCrash;
  absl::Duration delay;  // kDelay's
  int fire_on_hit = 1;
  int hits = 0;
};

std::string Describe(const Failpoint& fp) {
  switch (fp.action) {
    case Action::kCrash:
      return "crash";
    case Action::kStall:
      return "stall";
    case Action::kDelay:
      return absl::StrCat("delay:", absl::ToInt64Milliseconds(fp.delay));
  }
  return "?";
}

ABSL_CONST_INIT absl::Mutex g_mu(absl::kConstInit);
std::map<std::string, Failpoint>* g_armed ABSL_PT_GUARDED_BY(g_mu) =
    new std::map<std::string, Failpoint>;
std::map<std::string, std::function<void()>>* g_hooks ABSL_PT_GUARDED_BY(g_mu) =
    new std::map<std::string, std::function<void()>>;

void UpdateEnabledLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_mu) {
  internal::g_failpoints_enabled = !g_armed->empty() || !g_hooks->empty();
}

}  // namespace

absl::Status ArmFailpoints(const std::string& spec) {
  std::map<std::string, Failpoint> armed;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> kv = absl::StrSplit(item, '=');
    if (kv.size() != 2 || kv[0].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("failpoint \"", item, "\": expected name=crash|stall|delay:MS[@N]"));
    }
    Failpoint fp;
    std::vector<absl::string_view> action = absl::StrSplit(kv[1], '@');
    int64_t delay_ms = 0;
    if (action[0] == "crash") {
      fp.action = Action::kCrash;
    } else if (action[0] == "stall") {
      fp.action = Action::kStall;
    } else if (absl::ConsumePrefix(&action[0], "delay:") &&
               absl::SimpleAtoi(action[0], &delay_ms) && delay_ms >= 0 && delay_ms <= 600'000) {
      fp.action = Action::kDelay;
      fp.delay = absl::Milliseconds(delay_ms);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "failpoint \"", item, "\": action must be crash, stall or delay:MS (0 to 600000)"));
    }
    if (action.size() == 2 &&
        (!absl::SimpleAtoi(action[1], &fp.fire_on_hit) || fp.fire_on_hit < 1)) {
      return absl::InvalidArgumentError(absl::StrCat("failpoint \"", item, "\": @N needs N >= 1"));
    }
    armed[std::string(kv[0])] = fp;
  }
  absl::MutexLock lock(&g_mu);
  *g_armed = std::move(armed);
  UpdateEnabledLocked();
  for (const auto& [name, fp] : *g_armed) {
    TXLOG(WARNING) << "failpoint armed: " << name << "=" << Describe(fp) << "@" << fp.fire_on_hit;
  }
  return absl::OkStatus();
}

void SetFailpointHook(const std::string& name, std::function<void()> hook) {
  absl::MutexLock lock(&g_mu);
  if (hook == nullptr) {
    g_hooks->erase(name);
  } else {
    (*g_hooks)[name] = std::move(hook);
  }
  UpdateEnabledLocked();
}

absl::Status ArmFailpointsFromEnvironment() {
  const char* spec = std::getenv("TXCOORD_FAILPOINTS");
  if (spec == nullptr || *spec == '\0') return absl::OkStatus();
  return ArmFailpoints(spec);
}

namespace internal {
void HitFailpoint(const char* name) {
  Failpoint fp;
  std::function<void()> hook;
  {
    absl::MutexLock lock(&g_mu);
    if (auto found = g_hooks->find(name); found != g_hooks->end()) {
      hook = found->second;
    } else {
      auto it = g_armed->find(name);
      if (it == g_armed->end() || ++it->second.hits != it->second.fire_on_hit) return;
      fp = it->second;
    }
  }
  if (hook != nullptr) {
    hook();  // outside the lock: it may block, or arm failpoints itself
    return;
  }
  TXLOG(WARNING) << "failpoint " << name << " hit: " << Describe(fp);
  switch (fp.action) {
    case Action::kCrash:
      ::_exit(kFailpointExitCode);
    case Action::kDelay:
      absl::SleepFor(fp.delay);
      return;
    case Action::kStall:
      break;
  }
  absl::Notification never;
  never.WaitForNotification();
}
}  // namespace internal

}  // namespace txcoord
