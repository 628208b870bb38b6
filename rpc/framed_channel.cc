#include "rpc/framed_channel.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/tcp_listener.h"

namespace txcoord {
namespace {

// Connects one socket to `a` within `deadline`; -1 with `error` set.
int ConnectOne(const addrinfo* a, absl::Time deadline, std::string* error) {
  const int fd =
      socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  int failed = 0;
  if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
    failed = errno;
    if (failed == EINPROGRESS) {
      socklen_t length = sizeof(failed);
      if (absl::Status ready = WaitForSocket(fd, POLLOUT, deadline); !ready.ok()) {
        failed = ETIMEDOUT;
      } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &failed, &length) != 0) {
        failed = errno;
      }
    }
  }
  if (failed != 0) {
    *error = std::strerror(failed);
    close(fd);
    return -1;
  }
  // Calls block on their own deadlines (rpc/frame.h): the socket itself
  // blocks, and answers go out at once.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// True if the peer has closed `fd` (or sent what no call asked for).
bool ClosedByPeer(int fd) {
  pollfd ready{fd, POLLIN, 0};
  return poll(&ready, 1, 0) != 0;
}

}  // namespace

std::unique_ptr<FramedChannel> FramedChannelUnlessTls(const std::string& address, bool tls) {
  if (address.empty() || tls) return nullptr;
  return std::make_unique<FramedChannel>(address);
}

FramedChannel::FramedChannel(std::string address, size_t max_idle, absl::Duration connect_timeout)
    : address_(std::move(address)), max_idle_(max_idle), connect_timeout_(connect_timeout) {}

FramedChannel::~FramedChannel() {
  absl::MutexLock lock(&mu_);
  for (int fd : idle_) close(fd);
}

absl::StatusOr<int> FramedChannel::Connect(absl::Time deadline) const {
  std::string host, port;
  if (absl::Status s = SplitHostPort(address_, "framed_address", &host, &port); !s.ok()) return s;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &addresses); rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("framed port at ", address_, ": ", gai_strerror(rc)));
  }
  std::string error = "no address";
  int fd = -1;
  deadline = std::min(deadline, absl::Now() + connect_timeout_);
  for (const addrinfo* a = addresses; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ConnectOne(a, deadline, &error);
  }
  freeaddrinfo(addresses);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("framed port at ", address_, ": ", error));
  }
  return fd;
}

absl::StatusOr<int> FramedChannel::Take(absl::Time deadline, bool wait_for_ready) {
  for (;;) {
    int fd = -1;
    {
      absl::MutexLock lock(&mu_);
      if (idle_.empty()) break;
      fd = idle_.back();
      idle_.pop_back();
    }
    if (!ClosedByPeer(fd)) return fd;
    close(fd);
  }
  absl::Duration pause = absl::Milliseconds(10);
  for (;;) {
    absl::StatusOr<int> fd = Connect(deadline);
    if (fd.ok() || !wait_for_ready || absl::IsInvalidArgument(fd.status())) return fd;
    if (absl::Now() + pause >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("deadline passed connecting: ", fd.status().message()));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(200));
  }
}

void FramedChannel::Give(int fd) {
  {
    absl::MutexLock lock(&mu_);
    if (idle_.size() < max_idle_) {
      idle_.push_back(fd);
      return;
    }
  }
  close(fd);
}

void FramedChannel::Discard(int fd) { close(fd); }

absl::Status FramedChannel::Call(FrameMethod method, const google::protobuf::MessageLite& request,
                                 absl::Duration timeout, bool wait_for_ready,
                                 google::protobuf::MessageLite* response, Progress* progress) {
  Progress ignored;
  if (progress == nullptr) progress = &ignored;
  *progress = Progress::kNotSent;
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<int> fd = Send(method, request, timeout, deadline, wait_for_ready);
  if (!fd.ok()) return fd.status();
  bool answered = false;
  const absl::Status status = Receive(*fd, deadline, response, &answered);
  *progress = answered ? Progress::kAnswered : Progress::kUnanswered;
  return status;
}

absl::StatusOr<int> FramedChannel::Send(FrameMethod method,
                                        const google::protobuf::MessageLite& request,
                                        absl::Duration timeout, absl::Time deadline,
                                        bool wait_for_ready) {
  absl::StatusOr<int> fd = Take(deadline, wait_for_ready);
  if (!fd.ok()) return fd.status();
  // What is left of it after connecting is the deadline the server gets.
  const absl::Duration left = timeout == absl::InfiniteDuration()
                                  ? timeout
                                  : std::max(deadline - absl::Now(), absl::Milliseconds(1));
  if (absl::Status sent = WriteFrame(*fd, EncodeRequest(method, left, request), deadline);
      !sent.ok()) {
    Discard(*fd);
    return sent;
  }
  return fd;
}

absl::Status FramedChannel::Receive(int fd, absl::Time deadline,
                                    google::protobuf::MessageLite* response, bool* answered) {
  FrameReader reader(fd);
  absl::StatusOr<std::string> body = reader.Read(kMaxFrameBodyBytes, deadline);
  if (!body.ok()) {
    Discard(fd);
    return body.status();
  }
  // More than the answer: the connection is out of step; this answer
  // stands, the connection does not.
  if (reader.buffered() == 0) {
    Give(fd);
  } else {
    Discard(fd);
  }
  if (answered != nullptr) *answered = true;
  return DecodeAnswer(*body, response);
}

}  // namespace txcoord
