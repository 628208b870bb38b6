#include "bench/floors.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/proc_stats.h"
#include "health.grpc.pb.h"
#include "rpc/grpc_util.h"

namespace txcoord::bench {

namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// write + fdatasync of `record_bytes` at the times `next` hands out (nullopt:
// stop), on a fresh file in `dir` that is removed afterwards.
template <typename Next>
absl::StatusOr<std::vector<Clock::duration>> AppendAndSync(const std::string& dir, int record_bytes,
                                                           Next next) {
  const std::string path = absl::StrCat(dir, "/fsync_floor.", ::gettid(), ".dat");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("open ", path));
  const std::string buffer(static_cast<size_t>(record_bytes), 'f');
  std::vector<Clock::duration> samples;
  absl::Status status;
  while (next(samples.size())) {
    const Clock::time_point start = Clock::now();
    if (::write(fd, buffer.data(), buffer.size()) != static_cast<ssize_t>(buffer.size()) ||
        ::fdatasync(fd) != 0) {
      status = Errno(absl::StrCat("write/fdatasync ", path));
      break;
    }
    samples.push_back(Clock::now() - start);
  }
  ::close(fd);
  ::unlink(path.c_str());
  if (!status.ok()) return status;
  return samples;
}

// Sends all of `bytes`, or reads exactly `buffer.size()` bytes into
// `buffer`: OK, or why not (the peer gone, a timeout).
absl::Status SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("send on loopback");
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}
absl::Status ReceiveAll(int fd, std::string& buffer) {
  size_t got = 0;
  while (got < buffer.size()) {
    const ssize_t n = ::recv(fd, buffer.data() + got, buffer.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("recv on loopback");
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("loopback peer closed after ", got, " of ", buffer.size(), " bytes"));
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Closes the descriptor it holds on every path out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

absl::StatusOr<std::vector<Clock::duration>> MeasureFsync(const std::string& dir, int record_bytes,
                                                          Clock::duration duration) {
  const Clock::time_point end = Clock::now() + duration;
  return AppendAndSync(dir, record_bytes,
                       [end](size_t done) { return Clock::now() < end || done < 10; });
}

absl::StatusOr<std::vector<Clock::duration>> SampleFsync(const std::string& dir, int record_bytes,
                                                         Clock::time_point start,
                                                         Clock::time_point end,
                                                         Clock::duration interval) {
  Clock::time_point tick = start;
  return AppendAndSync(dir, record_bytes, [&tick, end, interval](size_t) {
    std::this_thread::sleep_until(tick);
    // A slow sync skips the ticks it overran instead of bunching them.
    while (tick <= Clock::now()) tick += interval;
    return Clock::now() < end;
  });
}

absl::StatusOr<std::vector<Clock::duration>> MeasureGrpcRoundTrip(const std::string& target,
                                                                  Clock::duration duration,
                                                                  pid_t server_pid,
                                                                  RoundTripCpu* cpu) {
  // A channel of its own, with the project's defaults: the floor is one
  // call on an idle connection, not a call queued behind the workload's.
  std::unique_ptr<grpc::health::v1::Health::Stub> stub =
      grpc::health::v1::Health::NewStub(MakeChannel(target));
  auto check = [&stub, &target]() -> absl::Status {
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(5));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    absl::Status status = FromGrpcStatus(stub->Check(&context, request, &response));
    if (status.ok() && response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
      status = absl::UnavailableError(absl::StrCat(target, " is not SERVING"));
    }
    return status;
  };
  for (int i = 0; i < 20; ++i) {
    if (absl::Status status = check(); !status.ok()) return status;
  }
  auto cpu_now = [cpu, server_pid]() -> absl::StatusOr<double> {
    if (cpu == nullptr) return 0.0;
    absl::StatusOr<double> server = ProcessCpuSeconds(server_pid);
    if (!server.ok()) return server.status();
    return *server + SelfCpuSeconds();
  };
  const absl::StatusOr<double> cpu_before = cpu_now();
  if (!cpu_before.ok()) return cpu_before.status();
  std::vector<Clock::duration> samples;
  const Clock::time_point end = Clock::now() + duration;
  while (Clock::now() < end || samples.size() < 10) {
    const Clock::time_point start = Clock::now();
    if (absl::Status status = check(); !status.ok()) return status;
    samples.push_back(Clock::now() - start);
  }
  const absl::StatusOr<double> cpu_after = cpu_now();
  if (!cpu_after.ok()) return cpu_after.status();
  if (cpu != nullptr) {
    cpu->seconds += *cpu_after - *cpu_before;
    cpu->calls += static_cast<int64_t>(samples.size());
  }
  return samples;
}

absl::StatusOr<std::vector<Clock::duration>> MeasureTcpRoundTrip(Clock::duration duration,
                                                                 RoundTripCpu* cpu,
                                                                 int request_bytes,
                                                                 int response_bytes) {
  if (request_bytes <= 0 || response_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("a round trip needs a request and an answer of "
                     "at least a byte, got ",
                     request_bytes, " and ", response_bytes));
  }
  Fd listener{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (listener.fd < 0) return Errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener.fd, 1) != 0 ||
      ::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return Errno("listening on loopback");
  }
  Fd client{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (client.fd < 0) return Errno("socket");
  if (::connect(client.fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Errno("connecting on loopback");
  }
  Fd server{::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC)};
  if (server.fd < 0) return Errno("accept");
  // Neither end waits for ever on the other: a measurement that cannot go
  // on fails instead of hanging the benchmark.
  const int one = 1;
  const timeval limit{5, 0};
  for (const int fd : {client.fd, server.fd}) {
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  }

  // The server answers every request until the client shuts its side down,
  // then shuts its own, so that a client still waiting sees the end.
  double server_cpu = 0;
  int64_t answered = 0;
  std::thread serving([&] {
    std::string request(static_cast<size_t>(request_bytes), 'q');
    const std::string response(static_cast<size_t>(response_bytes), 'a');
    const double start = ThreadCpuSeconds();
    while (ReceiveAll(server.fd, request).ok() && SendAll(server.fd, response).ok()) ++answered;
    server_cpu = ThreadCpuSeconds() - start;
    ::shutdown(server.fd, SHUT_RDWR);
  });
  const std::string request(static_cast<size_t>(request_bytes), 'q');
  std::string response(static_cast<size_t>(response_bytes), 'a');
  std::vector<Clock::duration> samples;
  absl::Status status;
  const double start_cpu = ThreadCpuSeconds();
  const Clock::time_point end = Clock::now() + duration;
  while (Clock::now() < end || samples.size() < 100) {
    const Clock::time_point start = Clock::now();
    status = SendAll(client.fd, request);
    if (status.ok()) status = ReceiveAll(client.fd, response);
    if (!status.ok()) break;
    samples.push_back(Clock::now() - start);
  }
  const double client_cpu = ThreadCpuSeconds() - start_cpu;
  ::shutdown(client.fd, SHUT_WR);
  serving.join();
  if (!status.ok()) return status;
  if (answered != static_cast<int64_t>(samples.size())) {
    return absl::InternalError(absl::StrCat("loopback round trips: ", samples.size(),
                                            " answers read, ", answered, " sent"));
  }
  if (cpu != nullptr) {
    cpu->seconds += client_cpu + server_cpu;
    cpu->calls += static_cast<int64_t>(samples.size());
  }
  return samples;
}

}  // namespace txcoord::bench
