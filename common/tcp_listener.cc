#include "common/tcp_listener.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace txcoord {
absl::Status SplitHostPort(const std::string& listen, absl::string_view flag, std::string* host,
                           std::string* port) {
  const absl::Status bad = absl::InvalidArgumentError(
      absl::StrCat(flag, " must be host:port (e.g. 127.0.0.1:9464), got \"", listen, "\""));
  if (!listen.empty() && listen[0] == '[') {
    const size_t close = listen.find("]:");
    if (close == std::string::npos) return bad;
    *host = listen.substr(1, close - 1);
    *port = listen.substr(close + 2);
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos) return bad;
    *host = listen.substr(0, colon);
    *port = listen.substr(colon + 1);
  }
  int number = 0;
  if (host->empty() || port->empty() || !absl::SimpleAtoi(*port, &number) || number < 0 ||
      number > 65535 || port->find_first_not_of("0123456789") != std::string::npos) {
    return bad;
  }
  return absl::OkStatus();
}

absl::StatusOr<TcpListener> ListenTcp(const std::string& listen, absl::string_view flag,
                                      const TcpListenOptions& options) {
  std::string host, port;
  if (absl::Status s = SplitHostPort(listen, flag, &host, &port); !s.ok()) return s;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &addresses); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", listen, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* a = addresses; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family,
                a->ai_socktype | SOCK_CLOEXEC | (options.nonblocking ? SOCK_NONBLOCK : 0),
                a->ai_protocol);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, options.backlog) != 0) {
      error = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(addresses);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " (", flag, "): ", error));
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  const int bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  TcpListener listener;
  listener.fd = fd;
  listener.address = host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", bound_port)
                                                         : absl::StrCat(host, ":", bound_port);
  return listener;
}

bool IsLoopbackAddress(absl::string_view address) {
  return absl::StartsWith(address, "127.") || address == "::1" ||
         absl::StartsWith(address, "::ffff:127.");
}

std::string ReachableAt(const std::string& bound, const std::string& endpoint) {
  std::string host, port, endpoint_host, endpoint_port;
  if (!SplitHostPort(bound, "bound", &host, &port).ok() ||
      !SplitHostPort(endpoint, "endpoint", &endpoint_host, &endpoint_port).ok()) {
    return bound;
  }
  auto loopback = [](const std::string& h) { return h == "localhost" || IsLoopbackAddress(h); };
  if (loopback(host) && !loopback(endpoint_host)) return "";
  if (host != "0.0.0.0" && host != "::") return bound;
  const bool v6 = endpoint_host.find(':') != std::string::npos;
  return v6 ? absl::StrCat("[", endpoint_host, "]:", port) : absl::StrCat(endpoint_host, ":", port);
}

}  // namespace txcoord
