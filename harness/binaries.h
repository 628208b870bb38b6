// Finds the daemon binaries that tests, the demo and benchmarks start: by
// default the ones built next to the running executable (same CMake build
// tree), or the paths in TXCOORD_BIN / TXAGENT_BIN; and the system's
// nats-server and etcd.
//
//   absl::StatusOr<std::string> txcoord = txcoord::testing::CoordinatorBinary();
#ifndef TXCOORD_HARNESS_BINARIES_H_
#define TXCOORD_HARNESS_BINARIES_H_

#include <string>

#include "absl/status/statusor.h"

namespace txcoord::testing {

// The CMake build directory holding the running executable: the nearest
// ancestor of /proc/self/exe's directory that contains CMakeCache.txt.
// NOT_FOUND if there is none (e.g. an installed binary).
absl::StatusOr<std::string> BuildDir();

// The `txcoord` daemon: $TXCOORD_BIN if set, else BUILD/coordinator/txcoord.
// NOT_FOUND, naming the paths tried, unless the file is executable.
absl::StatusOr<std::string> CoordinatorBinary();

// The `txagent` daemon: $TXAGENT_BIN if set, else BUILD/agent/txagent.
absl::StatusOr<std::string> AgentBinary();

// The example consumer service: $EVENT_COUNTER_BIN if set, else
// BUILD/examples/event_counter.
absl::StatusOr<std::string> EventCounterBinary();

// `nats-server` (JetStream, for transactional messages): $NATS_SERVER_BIN if
// set, else the first in $PATH, else /usr/sbin or /usr/bin. NOT_FOUND names
// the Debian package to install.
absl::StatusOr<std::string> NatsServerBinary();

// `etcd` (the registry of cluster mode): $ETCD_BIN, or as NatsServerBinary
// finds nats-server (Debian package etcd-server).
absl::StatusOr<std::string> EtcdBinary();

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_BINARIES_H_
