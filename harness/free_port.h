// Loopback ports for servers the harness starts on fixed ports (nats-server,
// etcd): they keep their port across restarts, so it is chosen up front.
#ifndef TXCOORD_HARNESS_FREE_PORT_H_
#define TXCOORD_HARNESS_FREE_PORT_H_

#include "absl/status/statusor.h"

namespace txcoord::testing {

// A port the kernel just handed out on 127.0.0.1, free when this returns.
// Another process may bind it before the caller's server does: callers
// retry with a new port when their server says "address already in use".
absl::StatusOr<int> PickFreeLoopbackPort();

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_FREE_PORT_H_
