#include "rpc/framed_channel.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/frame.h"
#include "rpc/frame_server.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord {
namespace {

using ::testing::HasSubstr;

// Answers every Execute with its txid as the participant.
std::unique_ptr<FrameServer> StartEcho(const std::string& listen = "127.0.0.1:0") {
  FrameServerOptions options;
  options.name = "test framed";
  options.listen = listen;
  absl::StatusOr<std::unique_ptr<FrameServer>> server =
      FrameServer::Start(options, [](const FrameRequest& frame, const Caller&) {
        v1::ExecuteRequest request;
        request.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()));
        v1::ExecuteResponse response;
        response.set_participant(request.txid());
        return EncodeAnswer(absl::OkStatus(), &response);
      });
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

absl::Time Soon() { return absl::Now() + absl::Seconds(10); }

// One call on `fd`: the txid echoed back, or the error.
absl::StatusOr<std::string> Call(int fd, const std::string& txid) {
  v1::ExecuteRequest request;
  request.set_txid(txid);
  absl::Status sent =
      WriteFrame(fd, EncodeRequest(FrameMethod::kAgentExecute, absl::Seconds(5), request), Soon());
  if (!sent.ok()) return sent;
  absl::StatusOr<std::string> body = FrameReader(fd).Read(kMaxFrameBodyBytes, Soon());
  if (!body.ok()) return body.status();
  v1::ExecuteResponse response;
  if (absl::Status s = DecodeAnswer(*body, &response); !s.ok()) return s;
  return response.participant();
}

TEST(FramedChannelTest, AnAnsweredConnectionCarriesTheNextCall) {
  std::unique_ptr<FrameServer> server = StartEcho();
  ASSERT_NE(server, nullptr);
  FramedChannel channel(server->address());
  absl::StatusOr<int> first = channel.Take(Soon(), /*wait_for_ready=*/false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Call(*first, "c1.1.1").value_or("(failed)"), "c1.1.1");
  channel.Give(*first);
  absl::StatusOr<int> second = channel.Take(Soon(), false);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(Call(*second, "c1.1.2").value_or("(failed)"), "c1.1.2");
  channel.Give(*second);
  EXPECT_EQ(server->open_connections(), 1);
}

// Bytes after an answer put the connection out of step: the answer
// stands, and the next call goes on a new connection.
TEST(FramedChannelTest, AnAnswerFollowedByMoreBytesStandsButItsConnectionIsDropped) {
  absl::Mutex mu;
  int threads = 0;
  // A connection's calls run on its own thread (a thread's id may be
  // reused, a thread_local starts afresh).
  std::vector<int> served_on;
  FrameServerOptions options;
  options.name = "test framed";
  options.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<FrameServer>> server =
      FrameServer::Start(options, [&](const FrameRequest&, const Caller&) {
        absl::MutexLock lock(&mu);
        thread_local const int connection = ++threads;
        served_on.push_back(connection);
        v1::ExecuteResponse response;
        response.set_participant("p");
        std::string answer = EncodeAnswer(absl::OkStatus(), &response);
        if (served_on.size() == 1) answer += "stray";
        return answer;
      });
  ASSERT_TRUE(server.ok()) << server.status();
  FramedChannel channel((*server)->address());
  for (int i = 0; i < 2; ++i) {
    v1::ExecuteRequest request;
    request.set_txid("c1.1.1");
    v1::ExecuteResponse response;
    const absl::Status status =
        channel.Call(FrameMethod::kAgentExecute, request, absl::Seconds(10), false, &response);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(response.participant(), "p");
  }
  absl::MutexLock lock(&mu);
  ASSERT_EQ(served_on.size(), 2u);
  EXPECT_NE(served_on[0], served_on[1]);
}

TEST(FramedChannelTest, ARestartedAgentsOldConnectionIsDroppedNotUsed) {
  std::unique_ptr<FrameServer> server = StartEcho();
  ASSERT_NE(server, nullptr);
  const std::string address = server->address();
  FramedChannel channel(address);
  absl::StatusOr<int> fd = channel.Take(Soon(), false);
  ASSERT_TRUE(fd.ok()) << fd.status();
  ASSERT_TRUE(Call(*fd, "c1.1.1").ok());
  channel.Give(*fd);
  ASSERT_TRUE(server->Stop(Soon()));
  server.reset();
  server = StartEcho(address);  // the agent back on its port
  ASSERT_NE(server, nullptr);
  fd = channel.Take(Soon(), false);
  ASSERT_TRUE(fd.ok()) << fd.status();
  // Sent on the old connection, this call would fail with UNAVAILABLE.
  EXPECT_EQ(Call(*fd, "c1.1.2").value_or("(failed)"), "c1.1.2");
  channel.Give(*fd);
}

TEST(FramedChannelTest, NoAgentListeningIsUnavailableOrWaitedForUntilTheDeadline) {
  std::string address;
  {
    std::unique_ptr<FrameServer> gone = StartEcho();
    ASSERT_NE(gone, nullptr);
    address = gone->address();
  }
  FramedChannel channel(address);
  absl::StatusOr<int> fd = channel.Take(Soon(), /*wait_for_ready=*/false);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(fd.status().message(), HasSubstr(address));
  fd = channel.Take(absl::Now() + absl::Milliseconds(100), /*wait_for_ready=*/true);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(fd.status().message(), HasSubstr("connecting"));
}

TEST(FramedChannelTest, AnAddressWithoutPortIsInvalid) {
  FramedChannel channel("localhost");
  EXPECT_EQ(channel.Take(Soon(), true).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace txcoord
