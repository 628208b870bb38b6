// Binds a TCP listening socket from a "host:port" flag value, for the
// daemons' own small servers (the metrics endpoint, the agent's data path);
// gRPC and the HTTP port bind their own.
//
//   absl::StatusOr<TcpListener> listener =
//       ListenTcp("127.0.0.1:0", "--metrics_listen", {.nonblocking = true});
//   listener->address;  // "127.0.0.1:40123"
#ifndef TXCOORD_COMMON_TCP_LISTENER_H_
#define TXCOORD_COMMON_TCP_LISTENER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace txcoord {

struct TcpListenOptions {
  bool nonblocking = false;  // accept() on it returns EAGAIN instead of waiting
  int backlog = 64;
};

struct TcpListener {
  int fd = -1;          // the caller's to close
  std::string address;  // "host:port" or "[v6]:port" actually bound
};

// "host:port" or "[v6]:port" into its parts (the brackets dropped).
// INVALID_ARGUMENT naming `flag` unless the port is 0 to 65535 and the
// host is not empty.
absl::Status SplitHostPort(const std::string& listen, absl::string_view flag, std::string* host,
                           std::string* port);

// Binds `listen` ("host:port", "[v6]:port"; port 0 picks a free one) with
// SO_REUSEADDR and close-on-exec, and listens. INVALID_ARGUMENT naming
// `flag` for a malformed address or a host that does not resolve,
// UNAVAILABLE if no address of it can be bound.
absl::StatusOr<TcpListener> ListenTcp(const std::string& listen, absl::string_view flag,
                                      const TcpListenOptions& options = {});

// "127.0.0.1", "::1", "::ffff:127.0.0.1" (an address without port).
bool IsLoopbackAddress(absl::string_view address);

// Where the peers that reach the daemon at `endpoint` reach a server of it
// bound at `bound` ("host:port" as ListenTcp gives it): bound to a
// wildcard host (0.0.0.0, ::), `endpoint`'s host with `bound`'s port;
// bound to a loopback host while `endpoint` is not one, nowhere (empty:
// those peers would reach their own host's port); bound to another host,
// `bound` itself, as it is when either does not parse.
std::string ReachableAt(const std::string& bound, const std::string& endpoint);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_TCP_LISTENER_H_
