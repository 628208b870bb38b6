#include "common/metrics_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/tcp_listener.h"

namespace txcoord {
namespace metrics_server_internal {
namespace {

std::string Response(int code, const char* reason, const std::string& body, bool with_body,
                     const char* extra_header = "") {
  const char* type =
      code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8";
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", type,
                      "\r\nContent-Length: ", body.size(), "\r\n", extra_header,
                      "Connection: close\r\n\r\n", with_body ? body : "");
}

bool IsToken(absl::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (!absl::ascii_isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string Reply(const std::string& head, const std::function<std::string()>& render) {
  absl::string_view line(head);
  line = line.substr(0, line.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || !IsToken(parts[0]) || parts[1].empty() || parts[1][0] != '/') {
    return Response(400, "Bad Request", "malformed request line\n", true);
  }
  for (const char c : parts[1]) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return Response(400, "Bad Request", "malformed request target\n", true);
    }
  }
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
    return Response(505, "HTTP Version Not Supported", "HTTP/1.0 or HTTP/1.1 only\n", true);
  }
  const bool head_only = parts[0] == "HEAD";
  if (parts[0] != "GET" && !head_only) {
    return Response(405, "Method Not Allowed", "GET or HEAD only\n", true, "Allow: GET, HEAD\r\n");
  }
  const absl::string_view path = parts[1].substr(0, parts[1].find('?'));
  if (path != "/metrics")
    return Response(404, "Not Found", "not found: try /metrics\n", !head_only);
  return Response(200, "OK", render(), !head_only);
}

}  // namespace metrics_server_internal

struct MetricsServer::Connection {
  int fd = -1;
  std::string in;
  std::string out;
  size_t sent = 0;
  bool replying = false;
  absl::Time deadline;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, std::function<std::string()> render,
    const MetricsServerOptions& options) {
  absl::StatusOr<TcpListener> listener =
      ListenTcp(listen, "--metrics_listen", {.nonblocking = true, .backlog = 64});
  if (!listener.ok()) return listener.status();
  const int fd = listener->fd;
  const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  }
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(fd, wake, std::move(listener->address), std::move(render), options));
}

MetricsServer::MetricsServer(int listen_fd, int wake_fd, std::string address,
                             std::function<std::string()> render,
                             const MetricsServerOptions& options)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      address_(std::move(address)),
      render_(std::move(render)),
      options_(options),
      thread_([this] { Run(); }) {}

MetricsServer::~MetricsServer() {
  const uint64_t one = 1;
  ssize_t unused = write(wake_fd_, &one, sizeof(one));
  (void)unused;
  thread_.join();
  close(listen_fd_);
  close(wake_fd_);
}

std::string MetricsServer::Respond(const std::string& request) {
  return metrics_server_internal::Reply(request, render_);
}

bool MetricsServer::OnReadable(Connection& c) {
  char buffer[4096];
  while (!c.replying) {
    const ssize_t n = recv(c.fd, buffer, sizeof(buffer), 0);
    if (n == 0) return false;  // closed before a whole request: nothing to answer
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.in.append(buffer, static_cast<size_t>(n));
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) end = c.in.find("\n\n");
    if (end != std::string::npos && end <= options_.max_request_bytes) {
      c.out = Respond(c.in.substr(0, end));
      c.replying = true;
    } else if (c.in.size() > options_.max_request_bytes) {
      c.out =
          "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
          "Connection: close\r\n\r\n";
      c.replying = true;
    }
  }
  return OnWritable(c);
}

bool MetricsServer::OnWritable(Connection& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.sent += static_cast<size_t>(n);
  }
  // All sent: the close tells the client the response is complete.
  shutdown(c.fd, SHUT_WR);
  return false;
}

void MetricsServer::Run() {
  std::vector<std::unique_ptr<Connection>> connections;
  std::vector<pollfd> fds;
  // Out of file descriptors, a pending connection stays readable: pause
  // accepting for a moment instead of spinning on it.
  absl::Time accept_paused_until = absl::InfinitePast();
  while (true) {
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    const bool paused = absl::Now() < accept_paused_until;
    const bool accepting = connections.size() < options_.max_connections && !paused;
    fds.push_back({listen_fd_, static_cast<short>(accepting ? POLLIN : 0), 0});
    absl::Time next_deadline = paused ? accept_paused_until : absl::InfiniteFuture();
    for (const auto& c : connections) {
      fds.push_back({c->fd, static_cast<short>(c->replying ? POLLOUT : POLLIN), 0});
      next_deadline = std::min(next_deadline, c->deadline);
    }
    int timeout_ms = -1;
    if (next_deadline != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Ceil(next_deadline - absl::Now(),
                                                                    absl::Milliseconds(1)))));
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      TXLOG(ERROR) << "metrics server: poll: " << std::strerror(errno) << "; stopped";
      break;
    }
    if (fds[0].revents != 0) break;
    const absl::Time now = absl::Now();
    // Connections first: fds[2 + i] is connections[i] as of the poll.
    std::vector<std::unique_ptr<Connection>> kept;
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& c = *connections[i];
      const short revents = fds[2 + i].revents;
      bool keep = true;
      if (revents & (POLLERR | POLLNVAL)) {
        keep = false;
      } else if (revents & (POLLIN | POLLHUP)) {
        keep = c.replying ? OnWritable(c) : OnReadable(c);
      } else if (revents & POLLOUT) {
        keep = OnWritable(c);
      }
      if (keep && now >= c.deadline) keep = false;
      if (keep) {
        kept.push_back(std::move(connections[i]));
      } else {
        close(c.fd);
      }
    }
    connections = std::move(kept);
    if (fds[1].revents & POLLIN) {
      while (connections.size() < options_.max_connections) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            accept_paused_until = now + absl::Milliseconds(100);
          }
          break;  // else EAGAIN, or a connection that died in the queue
        }
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        c->deadline = now + options_.io_timeout;
        connections.push_back(std::move(c));
      }
    }
  }
  for (const auto& c : connections) close(c->fd);
}

}  // namespace txcoord
