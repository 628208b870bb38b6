// ParticipantTransport over the agents' framed ports (docs/protocol.md,
// "The framed port"), beside another transport (the daemon's gRPC one).
// A participant whose enlistment named a framed endpoint
// (NoteFramedEndpoint) gets its calls there; every other participant goes
// to the other transport. So does a call the framed port never saw (no
// connection, the request not written) or does not serve
// (UNIMPLEMENTED): it goes to the other transport with the time left, and
// so do that participant's calls for a hold-down (30 s, doubling to 5 min
// while the port keeps failing; a new framed endpoint from an enlistment
// ends it). A call that may have reached the agent is not sent again: a
// lost connection or a deadline is its answer, as over gRPC, and the
// agent's own errors are.
//
// Framed calls block their thread, so each framed endpoint has threads of
// its own: one is started when a call finds none idle, up to
// threads_per_endpoint, and each ends after idle_exit without a call. A
// participant that does not answer holds only its own calls.
//
//   GrpcParticipantTransport grpc(nullptr);
//   FramedParticipantTransport transport(&grpc);
//   transport.NoteFramedEndpoint("10.0.0.5:7001", "10.0.0.5:7101");  // from an Enlist
//   BatchingParticipantClient participants(&transport, RealClock());
#ifndef TXCOORD_COORDINATOR_FRAMED_PARTICIPANT_TRANSPORT_H_
#define TXCOORD_COORDINATOR_FRAMED_PARTICIPANT_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/participant_transport.h"
#include "rpc/frame.h"
#include "rpc/framed_channel.h"

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace txcoord::coordinator {

struct FramedTransportOptions {
  // Framed calls in flight to one participant; more wait their turn. The
  // batching client keeps two Prepare/Commit/Abort calls in flight per
  // participant; the others are one-phase commits and aborts.
  int threads_per_endpoint = 4;
  // How long a thread waits for a call before it ends.
  absl::Duration idle_exit = absl::Seconds(30);
  // A framed port that does not accept a connection this fast (filtered,
  // say) fails the attempt, and the call goes to the fallback with the
  // rest of its time.
  absl::Duration connect_timeout = absl::Seconds(1);
};

// Thread-safe. Callbacks run on the endpoint's threads, or on the other
// transport's. The destructor lets each endpoint's threads finish the
// calls queued for them, and waits for them.
class FramedParticipantTransport final : public ParticipantTransport {
 public:
  // `fallback` must outlive this transport and the completion of its calls.
  explicit FramedParticipantTransport(ParticipantTransport* fallback,
                                      FramedTransportOptions options = {});
  ~FramedParticipantTransport() override;
  FramedParticipantTransport(const FramedParticipantTransport&) = delete;
  FramedParticipantTransport& operator=(const FramedParticipantTransport&) = delete;

  // The participant reached at `endpoint` also serves frames at `framed`
  // (an EnlistRequest's framed_endpoint); an empty `framed` forgets it.
  void NoteFramedEndpoint(const std::string& endpoint, const std::string& framed);
  // Where `endpoint`'s calls go framed; empty if they go to the fallback
  // (none known, or held down after a failure).
  std::string FramedEndpointOf(const std::string& endpoint);

  void Prepare(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
               absl::Duration timeout, std::function<void(absl::StatusOr<Vote>)> done) override;
  void Commit(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override;
  void Abort(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override;
  void CommitOnePhase(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
                      absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override;
  void Batch(const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
             std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) override;
  // The fallback's: a batch may go either way.
  int max_batch_entries() const override;

  // Calls answered on a framed port (OK or the agent's error), and calls
  // sent again to the fallback after their framed attempt failed: for
  // metrics and tests.
  uint64_t framed_calls() const { return framed_calls_.load(std::memory_order_relaxed); }
  uint64_t fallbacks() const { return fallbacks_.load(std::memory_order_relaxed); }
  // Threads serving framed endpoints now.
  int threads();

 private:
  // A call for an endpoint's thread: runs it on the endpoint's channel.
  using Job = std::function<void(FramedChannel& channel)>;
  // One framed endpoint: its connections, queued calls and threads.
  struct Peer {
    Peer(std::string address, absl::Duration connect_timeout)
        : channel(std::move(address), /*max_idle=*/64, connect_timeout) {}
    FramedChannel channel;
    std::deque<Job> queue;
    int threads = 0;
    int idle = 0;
    absl::CondVar work;
  };

  // Sends `request` as `method` framed when `endpoint` has a framed
  // endpoint, and `answer` gets the agent's answer; otherwise, or when the
  // framed attempt fails (see above), runs `fallback` with the time left.
  template <typename Response>
  void Send(const std::string& endpoint, FrameMethod method,
            std::shared_ptr<const google::protobuf::MessageLite> request, absl::Duration timeout,
            std::function<void(absl::StatusOr<Response>)> answer,
            std::function<void(absl::Duration)> fallback);
  // Commit or Abort, which share their request and response.
  void Phase2(bool commit, const std::string& endpoint, const std::string& txid,
              absl::Duration timeout, std::function<void(absl::Status)> done);
  // Queues `job` for the threads of `endpoint`'s framed endpoint; false
  // when it has none, or it is held down.
  bool Enqueue(const std::string& endpoint, Job job) ABSL_LOCKS_EXCLUDED(mu_);
  // Enqueue's work under the lock; hands over the threads that ended.
  bool EnqueueLocked(const std::string& endpoint, Job job, std::vector<std::thread>* exited)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Holds down `endpoint`'s framed endpoint if it is still `framed`.
  void HoldDown(const std::string& endpoint, const std::string& framed, const absl::Status& why)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A call on `framed` was answered: the next failure holds it down for
  // the shortest time again.
  void Answered(const std::string& endpoint, const std::string& framed) ABSL_LOCKS_EXCLUDED(mu_);
  void Work(Peer* peer) ABSL_LOCKS_EXCLUDED(mu_);
  // Joins the threads that ended.
  void JoinExited() ABSL_LOCKS_EXCLUDED(mu_);

  ParticipantTransport* const fallback_;
  const FramedTransportOptions options_;
  std::atomic<uint64_t> framed_calls_{0};
  std::atomic<uint64_t> fallbacks_{0};

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // A participant's framed endpoint, and its hold-down.
  struct Framed {
    std::string address;
    absl::Time held_until = absl::InfinitePast();
    absl::Duration next_hold = kFirstHold;
  };
  static constexpr absl::Duration kFirstHold = absl::Seconds(30);
  static constexpr absl::Duration kLongestHold = absl::Minutes(5);
  // Participant endpoint -> its framed endpoint.
  absl::flat_hash_map<std::string, Framed> framed_ ABSL_GUARDED_BY(mu_);
  // Framed endpoint -> its peer, while a thread serves it: its connections
  // close with its last thread.
  absl::flat_hash_map<std::string, std::unique_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::thread::id, std::thread> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> exited_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_FRAMED_PARTICIPANT_TRANSPORT_H_
