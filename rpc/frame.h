// Frames of the daemons' framed ports (docs/protocol.md, "The framed
// port"): the calls on a transaction's path (an agent's Execute and its
// Participant calls, the coordinator's Commit) sent as one frame over a
// plain TCP connection and answered on the same connection, without gRPC.
// FrameServer (rpc/frame_server.h) serves them; AgentClient and Client
// send them when given a framed address, the coordinator when an agent's
// enlistment names one (coordinator/framed_participant_transport.h).
//
// A frame is a 4-byte little-endian length, then that many bytes of body:
//   request: version (1 byte, kFrameVersion), method (1 byte, FrameMethod),
//            timeout in milliseconds (4 bytes LE; 0: none), request proto
//   answer:  status code (1 byte, a google.rpc.Code), then the answer proto
//            when the code is 0, else the status message (UTF-8)
// One call at a time per connection: a client sends its next request only
// once it has read the answer to the last.
#ifndef TXCOORD_RPC_FRAME_H_
#define TXCOORD_RPC_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace txcoord {

inline constexpr uint8_t kFrameVersion = 1;

// The calls a frame may carry.
enum class FrameMethod : uint8_t {
  kAgentExecute = 1,       // at txagent: v1.ExecuteRequest -> v1.ExecuteResponse
  kCoordinatorCommit = 2,  // at txcoord: v1.CommitRequest -> v1.CommitResponse
  // At txagent, the coordinator's calls (v1.Participant):
  kParticipantPrepare = 3,         // v1.PrepareRequest -> v1.PrepareResponse
  kParticipantCommit = 4,          // v1.BranchRequest -> v1.BranchResponse
  kParticipantAbort = 5,           // v1.BranchRequest -> v1.BranchResponse
  kParticipantCommitOnePhase = 6,  // v1.BranchRequest -> v1.CommitOnePhaseResponse
  kParticipantBatch = 7,           // v1.BatchRequest -> v1.BatchResponse
  // At txcoord, the agents' calls:
  kCoordinatorEnlist = 8,       // v1.EnlistRequest -> v1.EnlistResponse
  kCoordinatorEnlistBatch = 9,  // v1.EnlistBatchRequest -> v1.EnlistBatchResponse
};
// "Agent.Execute", "Participant.Prepare", ...: the gRPC service and method
// it stands for; "?" for a number that is none of the above.
const char* FrameMethodName(FrameMethod method);

// The length prefix, and the request header after it.
inline constexpr size_t kFrameLengthBytes = 4;
inline constexpr size_t kRequestHeaderBytes = 6;
// Largest body either side accepts: gRPC's message limit (rpc/grpc_util.h,
// kMaxMessageBytes) plus the request header.
inline constexpr size_t kMaxFrameBodyBytes = (size_t{16} << 20) + kRequestHeaderBytes;

// A request as the server reads it.
struct FrameRequest {
  uint8_t method = 0;
  // InfiniteDuration when the client sent 0 (no deadline).
  absl::Duration timeout = absl::InfiniteDuration();
  absl::string_view payload;  // the request proto; points into the body read
};

// The whole frame (length prefix included) of a request. `timeout` is
// rounded up to whole milliseconds; InfiniteDuration (or one past
// UINT32_MAX ms) sends 0, no deadline.
std::string EncodeRequest(FrameMethod method, absl::Duration timeout,
                          const google::protobuf::MessageLite& request);
// INVALID_ARGUMENT for a body shorter than the header or of another
// version. An unknown method is the caller's to refuse.
absl::StatusOr<FrameRequest> DecodeRequest(absl::string_view body);

// The whole frame of an answer: `answer` serialized when `status` is OK
// (it must then be non-null), else the status's code and message.
std::string EncodeAnswer(const absl::Status& status, const google::protobuf::MessageLite* answer);
// The status the server sent; when it is OK, `answer` is parsed from the
// body (INTERNAL if it does not parse). An empty body or a code outside
// google.rpc.Code is INTERNAL.
absl::Status DecodeAnswer(absl::string_view body, google::protobuf::MessageLite* answer);

// Blocking I/O on a connected stream socket. `deadline` InfiniteFuture
// waits as long as it takes.
//
// Reads the frames of one connection. A recv takes what has arrived, up to
// some KiB past what is needed, so a frame that came whole (the usual
// case) costs one recv for its length and its body together; bytes past
// it are kept for the next Read. Not thread-safe; one per connection.
class FrameReader final {
 public:
  explicit FrameReader(int fd) : fd_(fd) {}
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Reads one frame and returns its body. UNAVAILABLE when the peer closed
  // or reset the connection (before or inside the frame), DEADLINE_EXCEEDED
  // when `deadline` passes, RESOURCE_EXHAUSTED for a length over
  // `max_body_bytes` (the connection is then out of step and must be
  // closed). A body is held in memory only as its bytes arrive, not at
  // its announced length.
  absl::StatusOr<std::string> Read(size_t max_body_bytes, absl::Time deadline);

  // Bytes read past the last frame returned: on a connection that carries
  // one call at a time, more than its answer means it is out of step.
  size_t buffered() const { return buffer_.size(); }

 private:
  // Reads until the buffer holds `wanted` bytes; `what` names them in
  // errors.
  absl::Status Fill(size_t wanted, absl::Time deadline, absl::string_view what);

  const int fd_;
  std::string buffer_;
};
// Waits until `fd` is ready for `events` (poll's POLLIN, POLLOUT), or
// DEADLINE_EXCEEDED once `deadline` passes.
absl::Status WaitForSocket(int fd, short events, absl::Time deadline);
// Writes all of `bytes` (without SIGPIPE). UNAVAILABLE when the
// connection is gone, DEADLINE_EXCEEDED when `deadline` passes first.
absl::Status WriteFrame(int fd, absl::string_view bytes, absl::Time deadline);

}  // namespace txcoord

#endif  // TXCOORD_RPC_FRAME_H_
