#include "rpc/frame.h"

#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord {
namespace {

using ::testing::HasSubstr;

// Two connected stream sockets, closed at the end.
class SocketPair {
 public:
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0); }
  ~SocketPair() {
    CloseWriter();
    CloseReader();
  }
  int writer() const { return fds_[0]; }
  int reader() const { return fds_[1]; }
  void CloseWriter() { Close(0); }
  void CloseReader() { Close(1); }
  void Write(const std::string& bytes) {
    ASSERT_EQ(write(writer(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }

 private:
  void Close(int end) {
    if (fds_[end] >= 0) close(fds_[end]);
    fds_[end] = -1;
  }
  int fds_[2] = {-1, -1};
};

v1::ExecuteRequest SomeRequest() {
  v1::ExecuteRequest request;
  request.set_txid("c1.1.7");
  request.set_prepare(true);
  request.add_statements()->set_sql("UPDATE accounts SET balance = balance - 5 WHERE id = 1");
  return request;
}

// The first four bytes of a frame say how long the rest is.
std::string LengthPrefix(uint32_t length) {
  std::string prefix(4, '\0');
  for (int i = 0; i < 4; ++i) prefix[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return prefix;
}

TEST(FrameTest, ARequestCrossesTheWireWhole) {
  SocketPair pair;
  pair.Write(EncodeRequest(FrameMethod::kAgentExecute, absl::Milliseconds(2500), SomeRequest()));
  absl::StatusOr<std::string> body =
      FrameReader(pair.reader()).Read(kMaxFrameBodyBytes, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(body.ok()) << body.status();
  absl::StatusOr<FrameRequest> request = DecodeRequest(*body);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->method, static_cast<uint8_t>(FrameMethod::kAgentExecute));
  EXPECT_EQ(request->timeout, absl::Milliseconds(2500));
  v1::ExecuteRequest parsed;
  ASSERT_TRUE(
      parsed.ParseFromArray(request->payload.data(), static_cast<int>(request->payload.size())));
  EXPECT_EQ(parsed.SerializeAsString(), SomeRequest().SerializeAsString());
}

// A reader takes what has arrived: two frames written at once come out
// one per Read, and a body larger than one read comes whole.
TEST(FrameTest, FramesThatArriveTogetherAreReadOneAfterTheOther) {
  SocketPair pair;
  const std::string big(200 << 10, 'x');
  pair.Write(LengthPrefix(3) + "one" + LengthPrefix(0) + LengthPrefix(5) + "three");
  FrameReader reader(pair.reader());
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  EXPECT_EQ(reader.Read(1024, deadline).value_or("(failed)"), "one");
  EXPECT_GT(reader.buffered(), 0u);
  EXPECT_EQ(reader.Read(1024, deadline).value_or("(failed)"), "");
  EXPECT_EQ(reader.Read(1024, deadline).value_or("(failed)"), "three");
  EXPECT_EQ(reader.buffered(), 0u);
  std::thread writer([&] {
    pair.Write(LengthPrefix(static_cast<uint32_t>(big.size())) + big + LengthPrefix(4) + "last");
  });
  absl::StatusOr<std::string> body = reader.Read(big.size(), deadline);
  writer.join();
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, big);
  EXPECT_EQ(reader.Read(1024, deadline).value_or("(failed)"), "last");
  pair.CloseWriter();
  EXPECT_THAT(reader.Read(1024, deadline).status().message(), HasSubstr("before a frame"));
}

// An answer that came is read even once its deadline passed: the call was
// answered.
TEST(FrameTest, AFrameThatArrivedIsReadPastItsDeadline) {
  SocketPair pair;
  pair.Write(LengthPrefix(4) + "done");
  FrameReader reader(pair.reader());
  EXPECT_EQ(reader.Read(1024, absl::Now() - absl::Seconds(1)).value_or("(failed)"), "done");
  EXPECT_EQ(reader.Read(1024, absl::Now() - absl::Seconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(FrameTest, TimeoutsRoundUpAndNoneMeansNoDeadline) {
  const auto timeout_of = [](absl::Duration sent) {
    const std::string frame = EncodeRequest(FrameMethod::kAgentExecute, sent, SomeRequest());
    absl::StatusOr<FrameRequest> request = DecodeRequest(absl::string_view(frame).substr(4));
    EXPECT_TRUE(request.ok()) << request.status();
    return request->timeout;
  };
  EXPECT_EQ(timeout_of(absl::Microseconds(300)), absl::Milliseconds(1));
  EXPECT_EQ(timeout_of(absl::Microseconds(1001)), absl::Milliseconds(2));
  EXPECT_EQ(timeout_of(absl::InfiniteDuration()), absl::InfiniteDuration());
  EXPECT_EQ(timeout_of(absl::Hours(24 * 60)), absl::InfiniteDuration());
}

TEST(FrameTest, AnAnswerCarriesItsStatusOrItsProto) {
  v1::ExecuteResponse response;
  response.set_participant("orders");
  response.set_branch_token(42);
  std::string frame = EncodeAnswer(absl::OkStatus(), &response);
  v1::ExecuteResponse decoded;
  ASSERT_TRUE(DecodeAnswer(absl::string_view(frame).substr(4), &decoded).ok());
  EXPECT_EQ(decoded.participant(), "orders");
  EXPECT_EQ(decoded.branch_token(), 42u);

  frame = EncodeAnswer(absl::AbortedError("lock wait timed out on accounts"), nullptr);
  absl::Status status = DecodeAnswer(absl::string_view(frame).substr(4), &decoded);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(status.message(), "lock wait timed out on accounts");
}

TEST(FrameTest, AnswersThatNoServerSendsAreInternal) {
  v1::ExecuteResponse response;
  EXPECT_THAT(DecodeAnswer("", &response).message(), HasSubstr("empty"));
  EXPECT_EQ(DecodeAnswer("", &response).code(), absl::StatusCode::kInternal);
  EXPECT_THAT(DecodeAnswer(std::string(1, char{17}) + "x", &response).message(),
              HasSubstr("status code 17"));
  // OK, then bytes that are no ExecuteResponse (a field 1 of length 100).
  EXPECT_EQ(DecodeAnswer(std::string("\0\x0a\x64", 3), &response).code(),
            absl::StatusCode::kInternal);
}

TEST(FrameTest, RequestsOfAnotherVersionOrTooShortAreRefused) {
  absl::StatusOr<FrameRequest> request = DecodeRequest("\x01\x01");
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(request.status().message(), HasSubstr("header alone is 6"));
  request = DecodeRequest(std::string("\x02\x01\0\0\0\0", 6));
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(request.status().message(), HasSubstr("version 2"));
}

TEST(FrameTest, APeerGoneBetweenFramesIsToldFromOneGoneInside) {
  {
    SocketPair pair;
    pair.CloseWriter();
    absl::StatusOr<std::string> body =
        FrameReader(pair.reader()).Read(1024, absl::InfiniteFuture());
    EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(body.status().message(), HasSubstr("before a frame"));
  }
  {
    SocketPair pair;
    pair.Write(LengthPrefix(100) + "only part of it");
    pair.CloseWriter();
    absl::StatusOr<std::string> body =
        FrameReader(pair.reader()).Read(1024, absl::Now() + absl::Seconds(5));
    EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(body.status().message(), HasSubstr("inside a frame's body"));
  }
}

TEST(FrameTest, ALengthOverTheLimitIsRefusedUnread) {
  SocketPair pair;
  pair.Write(LengthPrefix(1025));
  absl::StatusOr<std::string> body = FrameReader(pair.reader()).Read(1024, absl::InfiniteFuture());
  EXPECT_EQ(body.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(body.status().message(), HasSubstr("1025 bytes: at most 1024"));
}

TEST(FrameTest, AReadEndsAtItsDeadline) {
  SocketPair pair;
  pair.Write(LengthPrefix(10) + "12345");  // half a body, and no more coming
  absl::StatusOr<std::string> body =
      FrameReader(pair.reader()).Read(1024, absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(body.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(FrameTest, WritingToAClosedPeerIsUnavailableNotASignal) {
  SocketPair pair;
  pair.CloseReader();
  absl::Status written = WriteFrame(pair.writer(), "some bytes", absl::InfiniteFuture());
  EXPECT_EQ(written.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace txcoord
