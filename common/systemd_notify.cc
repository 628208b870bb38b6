#include "common/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace txcoord {

absl::Status NotifySystemd(absl::string_view state) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || env[0] == '\0') return absl::OkStatus();
  const std::string target = env;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (target.size() >= sizeof(address.sun_path) || (target[0] != '/' && target[0] != '@')) {
    return absl::InvalidArgumentError(absl::StrCat("NOTIFY_SOCKET is not a socket: ", target));
  }
  std::memcpy(address.sun_path, target.data(), target.size());
  // An abstract socket's name starts with a NUL byte and is not terminated.
  if (target[0] == '@') address.sun_path[0] = '\0';
  const socklen_t length = offsetof(sockaddr_un, sun_path) + target.size();

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&address), length);
  const int error = errno;
  close(fd);
  if (sent != static_cast<ssize_t>(state.size())) {
    return absl::UnavailableError(
        absl::StrCat("cannot notify ", target, ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace txcoord
