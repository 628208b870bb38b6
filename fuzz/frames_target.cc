// Fuzzing the framed ports' frames (rpc/frame.h): arbitrary bytes read as
// a stream of request frames the way FrameServer reads them, and as an
// answer the way a client decodes it. Reads end with a status and never
// hang; a request's payload is the body after its header; an answer that
// carries an error gives back exactly its code and message.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "fuzz/fuzz_targets.h"
#include "rpc/frame.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord::fuzz {
namespace {

// Far below a socket's buffer, so that one write never blocks.
constexpr size_t kMaxStreamBytes = 32 << 10;
// Small enough that inputs reach the limit.
constexpr size_t kMaxBody = 512;

void ReadAsServer(absl::string_view bytes) {
  int fds[2];
  Require(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
  bytes = bytes.substr(0, std::min(bytes.size(), kMaxStreamBytes));
  Require(write(fds[0], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()),
          "short write to the socket pair");
  close(fds[0]);
  FrameReader reader(fds[1]);
  for (;;) {
    absl::StatusOr<std::string> body = reader.Read(kMaxBody, absl::Now() + absl::Seconds(5));
    if (!body.ok()) {
      Require(absl::IsUnavailable(body.status()) || absl::IsResourceExhausted(body.status()),
              "FrameReader::Read fails other than UNAVAILABLE or RESOURCE_EXHAUSTED on a closed "
              "stream");
      break;
    }
    Require(body->size() <= kMaxBody, "FrameReader::Read returned a body over its limit");
    absl::StatusOr<FrameRequest> request = DecodeRequest(*body);
    if (request.ok()) {
      Require(request->payload.size() + kRequestHeaderBytes == body->size(),
              "a request's payload is not the body after its header");
    } else {
      Require(absl::IsInvalidArgument(request.status()),
              "DecodeRequest fails other than INVALID_ARGUMENT");
    }
  }
  close(fds[1]);
}

void DecodeAsClient(absl::string_view bytes) {
  v1::ExecuteResponse response;
  const absl::Status status = DecodeAnswer(bytes, &response);
  if (bytes.empty()) {
    Require(absl::IsInternal(status), "an empty answer decodes");
    return;
  }
  const int code = static_cast<unsigned char>(bytes[0]);
  if (code >= 1 && code <= 16) {
    Require(static_cast<int>(status.code()) == code && status.message() == bytes.substr(1),
            "an error answer does not give back its code and message");
    // What the server would send for that status decodes to it again.
    const std::string again = EncodeAnswer(status, nullptr);
    v1::ExecuteResponse unused;
    Require(DecodeAnswer(absl::string_view(again).substr(kFrameLengthBytes), &unused) == status,
            "an encoded error answer does not decode to its status");
  }
}

}  // namespace

int FuzzFrames(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  ReadAsServer(bytes);
  DecodeAsClient(bytes);
  return 0;
}

}  // namespace txcoord::fuzz
