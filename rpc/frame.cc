#include "rpc/frame.h"

#include <google/protobuf/message_lite.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "rpc/grpc_util.h"

namespace txcoord {

const char* FrameMethodName(FrameMethod method) {
  switch (method) {
    case FrameMethod::kAgentExecute:
      return "Agent.Execute";
    case FrameMethod::kCoordinatorCommit:
      return "Coordinator.Commit";
    case FrameMethod::kParticipantPrepare:
      return "Participant.Prepare";
    case FrameMethod::kParticipantCommit:
      return "Participant.Commit";
    case FrameMethod::kParticipantAbort:
      return "Participant.Abort";
    case FrameMethod::kParticipantCommitOnePhase:
      return "Participant.CommitOnePhase";
    case FrameMethod::kParticipantBatch:
      return "Participant.Batch";
    case FrameMethod::kCoordinatorEnlist:
      return "Coordinator.Enlist";
    case FrameMethod::kCoordinatorEnlistBatch:
      return "Coordinator.EnlistBatch";
  }
  return "?";
}
namespace {

static_assert(kMaxFrameBodyBytes == kMaxMessageBytes + kRequestHeaderBytes,
              "a frame carries what a gRPC message may");

// The highest google.rpc.Code (UNAUTHENTICATED).
constexpr int kMaxStatusCode = 16;

void PutUint32Le(uint32_t value, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

uint32_t GetUint32Le(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return value;
}

absl::Status ErrnoStatus(absl::string_view what, int error) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(error)));
}

// A frame reader's recv asks for at least kMinRead bytes, so that a
// frame's body comes with its length; and for at most kReadStep more than
// it holds, so that a peer that only sends lengths cannot make it hold
// their sum.
constexpr size_t kMinRead = size_t{4} << 10;
constexpr size_t kReadStep = size_t{64} << 10;

std::string Framed(size_t header_bytes, const google::protobuf::MessageLite* message,
                   absl::string_view text) {
  std::string frame(kFrameLengthBytes + header_bytes, '\0');
  if (message != nullptr) {
    message->AppendToString(&frame);
  } else {
    frame.append(text.data(), text.size());
  }
  PutUint32Le(static_cast<uint32_t>(frame.size() - kFrameLengthBytes), frame.data());
  return frame;
}

}  // namespace

absl::Status WaitForSocket(int fd, short events, absl::Time deadline) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("the call's deadline passed on its framed connection");
    }
    const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
    pollfd ready{fd, events, 0};
    const int n = poll(&ready, 1, static_cast<int>(std::min<int64_t>(ms, INT_MAX)));
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) return ErrnoStatus("poll", errno);
  }
}

std::string EncodeRequest(FrameMethod method, absl::Duration timeout,
                          const google::protobuf::MessageLite& request) {
  std::string frame = Framed(kRequestHeaderBytes, &request, {});
  char* header = frame.data() + kFrameLengthBytes;
  header[0] = static_cast<char>(kFrameVersion);
  header[1] = static_cast<char>(method);
  int64_t ms = 0;
  if (timeout != absl::InfiniteDuration()) {
    ms =
        std::max<int64_t>(1, absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1))));
    if (ms > int64_t{UINT32_MAX}) ms = 0;
  }
  PutUint32Le(static_cast<uint32_t>(ms), header + 2);
  return frame;
}

absl::StatusOr<FrameRequest> DecodeRequest(absl::string_view body) {
  if (body.size() < kRequestHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a framed request of ", body.size(), " bytes: its header alone is ", kRequestHeaderBytes));
  }
  const auto version = static_cast<uint8_t>(body[0]);
  if (version != kFrameVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame version ", version, ": this port speaks version ", kFrameVersion));
  }
  FrameRequest request;
  request.method = static_cast<uint8_t>(body[1]);
  const uint32_t ms = GetUint32Le(body.data() + 2);
  if (ms != 0) request.timeout = absl::Milliseconds(ms);
  request.payload = body.substr(kRequestHeaderBytes);
  return request;
}

std::string EncodeAnswer(const absl::Status& status, const google::protobuf::MessageLite* answer) {
  std::string frame = status.ok() ? Framed(1, answer, {}) : Framed(1, nullptr, status.message());
  frame[kFrameLengthBytes] = static_cast<char>(static_cast<int>(status.code()));
  return frame;
}

absl::Status DecodeAnswer(absl::string_view body, google::protobuf::MessageLite* answer) {
  if (body.empty()) return absl::InternalError("an empty framed answer");
  const int code = static_cast<unsigned char>(body[0]);
  if (code > kMaxStatusCode) {
    return absl::InternalError(absl::StrCat("a framed answer with status code ", code));
  }
  body.remove_prefix(1);
  if (code != 0) return absl::Status(static_cast<absl::StatusCode>(code), body);
  if (!answer->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::InternalError("a framed answer that does not parse");
  }
  return absl::OkStatus();
}

absl::Status FrameReader::Fill(size_t wanted, absl::Time deadline, absl::string_view what) {
  const bool bounded = deadline != absl::InfiniteFuture();
  while (buffer_.size() < wanted) {
    const size_t have = buffer_.size();
    buffer_.resize(have + std::min(std::max(wanted - have, kMinRead), kReadStep));
    const ssize_t n =
        recv(fd_, buffer_.data() + have, buffer_.size() - have, bounded ? MSG_DONTWAIT : 0);
    const int error = errno;
    buffer_.resize(have + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n > 0) continue;
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("connection closed by the peer ", have == 0 ? "before " : "inside ", what));
    }
    if (error == EAGAIN || error == EWOULDBLOCK) {
      if (absl::Status ready = WaitForSocket(fd_, POLLIN, deadline); !ready.ok()) return ready;
    } else if (error != EINTR) {
      return ErrnoStatus(absl::StrCat("reading ", what), error);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FrameReader::Read(size_t max_body_bytes, absl::Time deadline) {
  // A caller with a deadline waits for an answer, which has seldom come
  // yet: one poll, then one recv, rather than a recv that finds nothing
  // first. The poll is a hint: past the deadline, or on an error, Fill
  // still takes what has arrived before it gives up. Without a deadline,
  // the recv blocks.
  if (deadline != absl::InfiniteFuture() && buffer_.empty()) {
    (void)WaitForSocket(fd_, POLLIN, deadline);
  }
  if (absl::Status s = Fill(kFrameLengthBytes, deadline, "a frame"); !s.ok()) return s;
  const uint32_t length = GetUint32Le(buffer_.data());
  if (length > max_body_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a frame of ", length, " bytes: at most ", max_body_bytes));
  }
  const size_t end = kFrameLengthBytes + length;
  if (absl::Status s = Fill(end, deadline, "a frame's body"); !s.ok()) return s;
  std::string body;
  if (buffer_.size() == end) {
    body = std::move(buffer_);
    body.erase(0, kFrameLengthBytes);
    buffer_.clear();
  } else {
    body = buffer_.substr(kFrameLengthBytes, length);
    buffer_.erase(0, end);
    // What a large frame grew it to is not kept for the connection's life.
    if (buffer_.capacity() > kReadStep) buffer_.shrink_to_fit();
  }
  return body;
}

absl::Status WriteFrame(int fd, absl::string_view bytes, absl::Time deadline) {
  const bool bounded = deadline != absl::InfiniteFuture();
  while (!bytes.empty()) {
    const ssize_t n =
        send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | (bounded ? MSG_DONTWAIT : 0));
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (absl::Status ready = WaitForSocket(fd, POLLOUT, deadline); !ready.ok()) return ready;
    } else if (n < 0 && errno != EINTR) {
      return ErrnoStatus("writing a frame", errno);
    }
  }
  return absl::OkStatus();
}

}  // namespace txcoord
