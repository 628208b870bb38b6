// The daemons' Prometheus endpoint: a minimal HTTP/1.1 server on its own
// thread that answers GET (or HEAD) /metrics with a rendered page and
// anything else with an error status, one request per connection.
// Deliberately small: it parses a request line and skips headers, with
// bounded sizes, times and connection counts, so that a port scanner or a
// slow client cannot hurt the daemon behind it.
//
//   absl::StatusOr<std::unique_ptr<MetricsServer>> server =
//       MetricsServer::Start("127.0.0.1:9464", [&] { return registry.Render(); });
//   (*server)->address();  // "127.0.0.1:9464"
#ifndef TXCOORD_COMMON_METRICS_SERVER_H_
#define TXCOORD_COMMON_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace txcoord {

struct MetricsServerOptions {
  // A connection that has not sent its request headers, or not taken the
  // whole response, within this time is closed.
  absl::Duration io_timeout = absl::Seconds(5);
  // Connections served at once; more wait in the kernel's accept queue.
  size_t max_connections = 16;
  // Request line and headers together; larger gets 431 and a close.
  size_t max_request_bytes = 8192;
};

// Thread-safe to destroy from any thread but its own.
class MetricsServer final {
 public:
  // Binds `listen` ("host:port", "[v6]:port"; port 0 picks a free port),
  // then serves on a thread. `render` is called on that thread for each
  // GET /metrics (at most one at a time). INVALID_ARGUMENT for a malformed
  // address, UNAVAILABLE if it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen, std::function<std::string()> render,
      const MetricsServerOptions& options = {});

  // Stops the thread and closes every socket.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "host:port" actually bound (the port resolved if 0 was asked for).
  const std::string& address() const { return address_; }

 private:
  struct Connection;
  MetricsServer(int listen_fd, int wake_fd, std::string address,
                std::function<std::string()> render, const MetricsServerOptions& options);
  void Run();
  // Reads what is available; once the request is complete, queues the reply.
  // False when the connection is to be closed now.
  bool OnReadable(Connection& connection);
  bool OnWritable(Connection& connection);
  std::string Respond(const std::string& request);

  const int listen_fd_;
  const int wake_fd_;  // an eventfd: written once to stop the thread
  const std::string address_;
  const std::function<std::string()> render_;
  const MetricsServerOptions options_;
  std::thread thread_;
};

// Exposed for tests: the reply to one complete request head (request line
// and headers, without the final blank line), given the page to serve.
namespace metrics_server_internal {
std::string Reply(const std::string& head, const std::function<std::string()>& render);
}  // namespace metrics_server_internal

}  // namespace txcoord

#endif  // TXCOORD_COMMON_METRICS_SERVER_H_
