#include "rpc/frame_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord {
namespace {

using ::testing::HasSubstr;

// A blocking TCP connection to `address` ("127.0.0.1:PORT"), closed at the end.
class Connection {
 public:
  explicit Connection(const std::string& address) {
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port));
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    reader_ = std::make_unique<FrameReader>(fd_);
  }
  ~Connection() { close(fd_); }
  int fd() const { return fd_; }

  // Sends `frame` and returns the answer's status (the proto into `answer`).
  absl::Status Call(const std::string& frame, v1::ExecuteResponse* answer) {
    if (absl::Status s = WriteFrame(fd_, frame, Deadline()); !s.ok()) return s;
    return ReadAnswer(answer);
  }
  absl::Status ReadAnswer(v1::ExecuteResponse* answer) {
    absl::StatusOr<std::string> body = reader_->Read(kMaxFrameBodyBytes, Deadline());
    if (!body.ok()) return body.status();
    return DecodeAnswer(*body, answer);
  }
  // UNAVAILABLE once the server has closed its end.
  absl::Status ReadEnd() { return reader_->Read(kMaxFrameBodyBytes, Deadline()).status(); }

 private:
  static absl::Time Deadline() { return absl::Now() + absl::Seconds(10); }
  int fd_ = -1;
  std::unique_ptr<FrameReader> reader_;
};

std::string ExecuteFrame(const std::string& txid) {
  v1::ExecuteRequest request;
  request.set_txid(txid);
  return EncodeRequest(FrameMethod::kAgentExecute, absl::Seconds(1), request);
}

// Answers an Execute with its txid as the participant's name.
std::string Echo(const FrameRequest& frame, const Caller& caller) {
  v1::ExecuteRequest request;
  if (!request.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
    return EncodeAnswer(absl::InvalidArgumentError("does not parse"), nullptr);
  }
  v1::ExecuteResponse response;
  response.set_participant(request.txid());
  response.set_endpoint(caller.locality == Locality::kLoopback ? "loopback" : "remote");
  return EncodeAnswer(absl::OkStatus(), &response);
}

std::unique_ptr<FrameServer> StartServer(FrameServer::Handler handler, int max_connections = 8) {
  FrameServerOptions options;
  options.name = "test framed";
  options.listen = "127.0.0.1:0";
  options.max_connections = max_connections;
  absl::StatusOr<std::unique_ptr<FrameServer>> server =
      FrameServer::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(FrameServerTest, OneConnectionCarriesCallAfterCall) {
  std::unique_ptr<FrameServer> server = StartServer(Echo);
  ASSERT_NE(server, nullptr);
  Connection connection(server->address());
  for (const std::string txid : {"c1.1.1", "c1.1.2", "c1.1.3"}) {
    v1::ExecuteResponse answer;
    ASSERT_TRUE(connection.Call(ExecuteFrame(txid), &answer).ok());
    EXPECT_EQ(answer.participant(), txid);
    EXPECT_EQ(answer.endpoint(), "loopback");
  }
  EXPECT_EQ(server->calls(), 3u);
  EXPECT_EQ(server->open_connections(), 1);
}

TEST(FrameServerTest, AFrameOfAnotherVersionIsAnsweredThenTheConnectionCloses) {
  std::unique_ptr<FrameServer> server = StartServer(Echo);
  ASSERT_NE(server, nullptr);
  Connection connection(server->address());
  std::string frame = ExecuteFrame("c1.1.1");
  frame[4] = 9;  // the version byte
  v1::ExecuteResponse answer;
  absl::Status status = connection.Call(frame, &answer);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("version 9"));
  EXPECT_EQ(connection.ReadEnd().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server->calls(), 0u);
}

TEST(FrameServerTest, AFrameOverTheLimitIsRefusedUnread) {
  std::unique_ptr<FrameServer> server = StartServer(Echo);
  ASSERT_NE(server, nullptr);
  Connection connection(server->address());
  const uint32_t length = kMaxFrameBodyBytes + 1;
  std::string prefix(4, '\0');
  for (int i = 0; i < 4; ++i) prefix[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  v1::ExecuteResponse answer;
  absl::Status status = connection.Call(prefix, &answer);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(connection.ReadEnd().code(), absl::StatusCode::kUnavailable);
}

TEST(FrameServerTest, AConnectionOverTheLimitIsToldWhyAndClosed) {
  std::unique_ptr<FrameServer> server = StartServer(Echo, /*max_connections=*/1);
  ASSERT_NE(server, nullptr);
  Connection first(server->address());
  v1::ExecuteResponse answer;
  // Answered: the server holds the first connection before the second comes.
  ASSERT_TRUE(first.Call(ExecuteFrame("c1.1.1"), &answer).ok());
  Connection second(server->address());
  absl::Status status = second.ReadAnswer(&answer);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("1 connections open"));
  EXPECT_EQ(second.ReadEnd().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server->refused_connections(), 1u);
  // The first still works.
  ASSERT_TRUE(first.Call(ExecuteFrame("c1.1.2"), &answer).ok());
}

TEST(FrameServerTest, StopLetsTheRunningCallAnswerAndEndsIdleConnections) {
  absl::Notification running, release;
  std::unique_ptr<FrameServer> server =
      StartServer([&](const FrameRequest& frame, const Caller& caller) {
        v1::ExecuteRequest request;
        request.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()));
        if (request.txid() == "c1.1.9") {
          running.Notify();
          release.WaitForNotification();
        }
        return Echo(frame, caller);
      });
  ASSERT_NE(server, nullptr);
  Connection busy(server->address());
  Connection idle(server->address());
  v1::ExecuteResponse answer;
  // Answered: the server serves the idle connection before it stops.
  ASSERT_TRUE(idle.Call(ExecuteFrame("c1.1.1"), &answer).ok());
  ASSERT_TRUE(WriteFrame(busy.fd(), ExecuteFrame("c1.1.9"), absl::InfiniteFuture()).ok());
  running.WaitForNotification();

  std::atomic<bool> stopped{false};
  std::thread stopper([&] { stopped = server->Stop(absl::Now() + absl::Seconds(30)); });
  // The idle connection ends while the call still runs.
  EXPECT_EQ(idle.ReadEnd().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(stopped.load());
  release.Notify();
  ASSERT_TRUE(busy.ReadAnswer(&answer).ok());
  EXPECT_EQ(answer.participant(), "c1.1.9");
  EXPECT_EQ(busy.ReadEnd().code(), absl::StatusCode::kUnavailable);
  stopper.join();
  EXPECT_TRUE(stopped.load());
  EXPECT_EQ(server->open_connections(), 0);
}

TEST(FrameServerTest, BadListenAddressesAndLimitsAreRefused) {
  FrameServerOptions options;
  options.name = "test framed";
  options.listen = "no-port";
  EXPECT_EQ(FrameServer::Start(options, Echo).status().code(), absl::StatusCode::kInvalidArgument);
  options.listen = "127.0.0.1:0";
  options.max_connections = 0;
  EXPECT_EQ(FrameServer::Start(options, Echo).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace txcoord
