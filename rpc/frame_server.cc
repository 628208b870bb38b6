#include "rpc/frame_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "common/logging.h"
#include "common/tcp_listener.h"

namespace txcoord {
namespace {

// The peer's address class, for the access policy's loopback rules.
Caller CallerOfSocket(int fd) {
  Caller caller;
  sockaddr_storage peer{};
  socklen_t length = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) return caller;
  char text[INET6_ADDRSTRLEN] = {};
  const void* address =
      peer.ss_family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr)
          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr);
  if (inet_ntop(peer.ss_family, address, text, sizeof(text)) == nullptr) return caller;
  caller.locality = IsLoopbackAddress(text) ? Locality::kLoopback : Locality::kRemote;
  return caller;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FrameServer>> FrameServer::Start(FrameServerOptions options,
                                                                Handler handler) {
  if (options.max_connections <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", options.max_connections, " connections: give at least 1"));
  }
  absl::StatusOr<TcpListener> listener =
      ListenTcp(options.listen, "--framed_listen", {.nonblocking = false, .backlog = 256});
  if (!listener.ok()) return listener.status();
  std::unique_ptr<FrameServer> server(
      new FrameServer(std::move(options), std::move(handler), listener->fd, listener->address));
  std::printf("%s listening on %s\n", server->options_.name.c_str(), server->address_.c_str());
  std::fflush(stdout);
  return server;
}

FrameServer::FrameServer(FrameServerOptions options, Handler handler, int listen_fd,
                         std::string address)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      listen_fd_(listen_fd),
      address_(std::move(address)),
      acceptor_([this] { AcceptLoop(); }) {}

FrameServer::~FrameServer() {
  Stop(absl::InfiniteFuture());
  close(listen_fd_);
}

int FrameServer::open_connections() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(open_.size());
}

void FrameServer::AcceptLoop() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
      // EMFILE and the like: the connection waits in the backlog; try again
      // after a pause rather than spin.
      if (errno != EINTR && errno != ECONNABORTED) absl::SleepFor(absl::Milliseconds(10));
      continue;
    }
    SetSocketOptions(fd);
    bool refuse = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        close(fd);
        return;
      }
      refuse = static_cast<int>(open_.size()) >= options_.max_connections;
      if (!refuse) open_.insert(fd);
    }
    if (refuse) {
      Refuse(fd, absl::StrCat(options_.max_connections,
                              " connections open, the most it serves; try again, or raise its "
                              "limit"));
      continue;
    }
    try {
      std::thread([this, fd] { Serve(fd, CallerOfSocket(fd)); }).detach();
    } catch (const std::system_error& e) {
      {
        absl::MutexLock lock(&mu_);
        open_.erase(fd);
      }
      Refuse(fd, absl::StrCat("no thread for the connection: ", e.what()));
    }
  }
}

void FrameServer::SetSocketOptions(int fd) const {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  const int idle =
      static_cast<int>(std::max<int64_t>(1, absl::ToInt64Seconds(options_.keepalive_idle)));
  const int interval = 10;
  const int probes = 3;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes));
}

void FrameServer::Refuse(int fd, absl::string_view why) {
  refused_.fetch_add(1, std::memory_order_relaxed);
  const std::string answer =
      EncodeAnswer(absl::UnavailableError(absl::StrCat(options_.name, ": ", why)), nullptr);
  (void)WriteFrame(fd, answer, absl::Now() + absl::Milliseconds(100));
  close(fd);
}

bool FrameServer::ServeOne(int fd, FrameReader& reader, const Caller& caller) {
  absl::StatusOr<std::string> body = reader.Read(kMaxFrameBodyBytes, absl::InfiniteFuture());
  // The peer closed (or stop ended the connection) between calls.
  if (!body.ok() && absl::IsUnavailable(body.status())) return false;
  absl::StatusOr<FrameRequest> request =
      body.ok() ? DecodeRequest(*body) : absl::StatusOr<FrameRequest>(body.status());
  // A frame that cannot be read leaves the stream out of step: answer it,
  // then close.
  if (!request.ok()) {
    (void)WriteFrame(fd, EncodeAnswer(request.status(), nullptr),
                     absl::Now() + options_.write_timeout);
    return false;
  }
  calls_.fetch_add(1, std::memory_order_relaxed);
  calls_by_method_[request->method].fetch_add(1, std::memory_order_relaxed);
  const std::string answer = handler_(*request, caller);
  return WriteFrame(fd, answer, absl::Now() + options_.write_timeout).ok();
}

void FrameServer::Serve(int fd, Caller caller) {
  FrameReader reader(fd);
  while (ServeOne(fd, reader, caller)) {
  }
  // Closed and out of the set together: Stop returns only once its
  // connections are closed, and a number accept reuses is never erased
  // (its insert waits for this lock).
  absl::MutexLock lock(&mu_);
  close(fd);
  open_.erase(fd);
}

bool FrameServer::Stop(absl::Time deadline) {
  bool join = false;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    join = !acceptor_joined_;
    acceptor_joined_ = true;
    // A read waiting for the next request returns at once; a call being
    // run still writes its answer, and its next read ends the connection.
    for (int fd : open_) shutdown(fd, SHUT_RD);
  }
  if (join) {
    // accept() on a listening socket shut down returns EINVAL.
    shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
  }
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(
                                   +[](std::set<int>* open) { return open->empty(); }, &open_),
                               deadline);
}

}  // namespace txcoord
