// Serves frames (rpc/frame.h) on a TCP port: a thread per connection reads
// a request, runs the handler on that same thread and writes the answer,
// so a call costs no hand-off between threads (gRPC's server hands each
// call from the thread that read it to another). For the daemons' framed
// ports (docs/protocol.md, "The framed port").
//
//   auto server = FrameServer::Start({"txagent framed", "127.0.0.1:0", 256},
//       [&](const FrameRequest& request, const Caller& caller) {
//         return EncodeAnswer(absl::UnimplementedError("nothing here"), nullptr);
//       });
//   ...
//   (*server)->Stop(absl::Now() + absl::Seconds(5));
#ifndef TXCOORD_RPC_FRAME_SERVER_H_
#define TXCOORD_RPC_FRAME_SERVER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "rpc/access_policy.h"
#include "rpc/frame.h"

namespace txcoord {

struct FrameServerOptions {
  std::string name;    // for the listening line: "<name> listening on HOST:PORT"
  std::string listen;  // "host:port"; port 0 picks a free one
  // Connections served at once (a thread each). One more is answered
  // UNAVAILABLE, naming the limit, and closed.
  int max_connections = 256;
  // How long an answer may wait for a client that does not read it before
  // the connection is dropped.
  absl::Duration write_timeout = absl::Seconds(30);
  // A connection silent this long is probed by TCP keepalive, and dropped
  // when its host no longer answers (gone without closing it): it would
  // otherwise hold its thread and its place under max_connections.
  absl::Duration keepalive_idle = absl::Seconds(60);
};

// Thread-safe. Start prints its listening line on stdout.
class FrameServer final {
 public:
  // Runs one call on its connection's thread and returns the whole answer
  // frame (EncodeAnswer). `caller` has the peer's locality; no identity
  // (the framed port has no TLS). The method is the handler's to check.
  using Handler = std::function<std::string(const FrameRequest& request, const Caller& caller)>;

  // INVALID_ARGUMENT for a malformed `listen` or a non-positive
  // max_connections, UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<FrameServer>> Start(FrameServerOptions options,
                                                            Handler handler);
  // Stop(InfiniteFuture()): blocks until every connection's thread ended.
  ~FrameServer();
  FrameServer(const FrameServer&) = delete;
  FrameServer& operator=(const FrameServer&) = delete;

  // "HOST:PORT" actually bound.
  const std::string& address() const { return address_; }

  // Stops accepting, lets every connection finish the call it is running
  // (its answer is still sent), then closes them. True once every
  // connection's thread ended; false if `deadline` passed first (those
  // threads still use this object: end the process rather than destroy
  // it). Idempotent.
  bool Stop(absl::Time deadline);

  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }
  // Those that named `method` (served or refused by the handler).
  uint64_t calls(uint8_t method) const {
    return calls_by_method_[method].load(std::memory_order_relaxed);
  }
  // Connections refused: over max_connections, or no thread to serve them.
  uint64_t refused_connections() const { return refused_.load(std::memory_order_relaxed); }
  int open_connections() const;

 private:
  FrameServer(FrameServerOptions options, Handler handler, int listen_fd, std::string address);
  void AcceptLoop();
  void SetSocketOptions(int fd) const;
  // Tells the peer of `fd` why with an UNAVAILABLE answer, closes it and
  // counts it.
  void Refuse(int fd, absl::string_view why);
  void Serve(int fd, Caller caller);
  // One request read from `fd` (through its reader), answered; false when
  // the connection ends.
  bool ServeOne(int fd, FrameReader& reader, const Caller& caller);

  const FrameServerOptions options_;
  const Handler handler_;
  const int listen_fd_;
  const std::string address_;
  std::atomic<uint64_t> calls_{0};
  std::array<std::atomic<uint64_t>, 256> calls_by_method_{};
  std::atomic<uint64_t> refused_{0};

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool acceptor_joined_ ABSL_GUARDED_BY(mu_) = false;
  std::set<int> open_ ABSL_GUARDED_BY(mu_);  // connections with a thread serving them

  // Last: its thread uses every member above from its first accept.
  std::thread acceptor_;
};

}  // namespace txcoord

#endif  // TXCOORD_RPC_FRAME_SERVER_H_
