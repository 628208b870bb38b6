#include <cstdio>
#include <cstdlib>

#include "common/logging.h"
#include "fuzz/fuzz_targets.h"
#include "google/protobuf/stubs/logging.h"

namespace txcoord::fuzz {

const std::vector<Target>& AllTargets() {
  static const std::vector<Target> targets = {
      {"wal_reader", FuzzWalReader},
      {"records", FuzzRecords},
      {"coordinator_requests", FuzzCoordinatorRequests},
      {"agent_requests", FuzzAgentRequests},
      {"frames", FuzzFrames},
  };
  return targets;
}

void QuietLogs() {
  // Bad input makes the daemons warn, and protobuf complain about invalid
  // UTF-8, millions of times over.
  SetMinLogLevel(LogLevel::kFatal);
  google::protobuf::SetLogHandler(nullptr);
}

void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace txcoord::fuzz
