// A caller's side of a daemon's framed port (docs/protocol.md, "The
// framed port"): connections to its --framed_listen address, each carrying
// one framed call (rpc/frame.h) at a time, kept for the next call once
// answered. AgentClient and Client use it when given a framed address, the
// coordinator for the agents whose enlistments name one.
//
//   FramedChannel channel("127.0.0.1:7172");
//   absl::StatusOr<int> fd = channel.Take(deadline, /*wait_for_ready=*/true);
//   ... WriteFrame(*fd, ...), FrameReader(*fd).Read(...) ...
//   ok ? channel.Give(*fd) : FramedChannel::Discard(*fd);
#ifndef TXCOORD_RPC_FRAMED_CHANNEL_H_
#define TXCOORD_RPC_FRAMED_CHANNEL_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "rpc/frame.h"

namespace txcoord {

class FramedChannel;

// The channel of a client given `address` (its options' framed_address):
// nullptr when it is empty, or when the client has TLS credentials
// (`tls`), which the framed port cannot honour: such a client never falls
// back to plain TCP.
std::unique_ptr<FramedChannel> FramedChannelUnlessTls(const std::string& address, bool tls);

// Thread-safe.
class FramedChannel final {
 public:
  // `address` is "host:port"; nothing is connected before the first Take.
  // At most `max_idle` answered connections are kept. A connect that takes
  // longer than `connect_timeout` fails UNAVAILABLE, even with time left
  // before the call's deadline.
  explicit FramedChannel(std::string address, size_t max_idle = 64,
                         absl::Duration connect_timeout = absl::InfiniteDuration());
  // Closes the idle connections (taken ones are their holders' to end).
  ~FramedChannel();
  FramedChannel(const FramedChannel&) = delete;
  FramedChannel& operator=(const FramedChannel&) = delete;

  const std::string& address() const { return address_; }

  // A connection for one call: an idle one the agent has not closed
  // meanwhile (a restarted agent's old connections are dropped here), or
  // a new one. With `wait_for_ready`, a refused or failed connect is
  // tried again, after 10 ms doubling to 200 ms, until `deadline`.
  // UNAVAILABLE (naming the address) or DEADLINE_EXCEEDED.
  absl::StatusOr<int> Take(absl::Time deadline, bool wait_for_ready);
  // After a call fully answered: the connection carries the next one.
  void Give(int fd);
  // After a call that failed on its connection (unanswered, timed out):
  // the stream is out of step, so it is closed.
  static void Discard(int fd);

  // How far a call got: a caller that may try elsewhere can tell a call
  // the daemon never saw (kNotSent: no connection, or the request not
  // fully written) from one it may have run (kUnanswered) and from the
  // daemon's own answer, an error included (kAnswered).
  enum class Progress { kNotSent, kUnanswered, kAnswered };

  // A whole call: Send, then Receive. `progress` (if not null) says how
  // far it got.
  absl::Status Call(FrameMethod method, const google::protobuf::MessageLite& request,
                    absl::Duration timeout, bool wait_for_ready,
                    google::protobuf::MessageLite* response, Progress* progress = nullptr);
  // Sends `request` on a connection taken for it, with `timeout` as its
  // deadline, and returns the connection for Receive. Errors: Take's, or
  // the write's (the connection is then closed).
  absl::StatusOr<int> Send(FrameMethod method, const google::protobuf::MessageLite& request,
                           absl::Duration timeout, absl::Time deadline, bool wait_for_ready);
  // Reads the answer on `fd` (from Send) by `deadline`, gives the
  // connection back (or closes it when the read failed, or bytes came
  // after the answer: the connection is out of step), and returns the
  // server's status, `response` parsed when OK. `answered` (if not null)
  // says whether an answer was read.
  absl::Status Receive(int fd, absl::Time deadline, google::protobuf::MessageLite* response,
                       bool* answered = nullptr);

 private:
  absl::StatusOr<int> Connect(absl::Time deadline) const;

  const std::string address_;
  const size_t max_idle_;
  const absl::Duration connect_timeout_;
  absl::Mutex mu_;
  std::vector<int> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord

#endif  // TXCOORD_RPC_FRAMED_CHANNEL_H_
