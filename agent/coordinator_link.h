// How txagent talks to its coordinator: Enlist branches (the Enlister the
// participant core calls) and ask the outcome of in-doubt branches.
#ifndef TXCOORD_AGENT_COORDINATOR_LINK_H_
#define TXCOORD_AGENT_COORDINATOR_LINK_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduler.h"
#include "participant/in_doubt_resolver.h"
#include "participant/participant.h"
#include "participant/vote_key_holder.h"
#include "rpc/framed_channel.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::participant {

// Thread-safe.
//
// Enlist calls are batched adaptively: while kMaxEnlistsInFlight Enlist
// RPCs are outstanding, further callers wait, and when one RPC ends its
// caller hands everything that waited to the first waiter, which sends it
// as one EnlistBatch and answers the others. A lone Execute's Enlist is
// sent at once. A coordinator without EnlistBatch (UNIMPLEMENTED) gets
// single Enlists, from every caller itself, for a minute before a batch is
// tried again.
//
// A link allowed plain TCP (no TLS to the coordinator) sends Enlist and
// EnlistBatch to the coordinator's framed port once an answer names one
// (EnlistResponse.framed_endpoint; docs/protocol.md, "The framed port"),
// batched the same way; the asynchronous ones on up to
// kMaxEnlistsInFlight threads of the link's own. A framed call the port
// never saw (no connection in 1 s, the request not written) or does not
// serve (UNIMPLEMENTED) goes over gRPC with the time left, and so do the
// link's Enlists for a hold-down (30 s, doubling to 5 min while the port
// keeps failing; an answer naming another port ends it). One that may
// have reached the coordinator is not sent again: its error is the
// answer, as over gRPC.
class CoordinatorLink final : public Enlister {
 public:
  static constexpr int kMaxEnlistsInFlight = 2;
  static constexpr int kMaxEnlistBatch = 256;

  // `clock` (which must outlive the link) times the UNIMPLEMENTED fallback.
  // `framed_allowed`: the coordinator's framed port may be used (never
  // with TLS to it: the framed port is plain TCP).
  CoordinatorLink(std::shared_ptr<grpc::Channel> channel, std::string participant_name,
                  absl::Duration rpc_timeout, Clock* clock = RealClock(),
                  bool framed_allowed = false);
  CoordinatorLink(const CoordinatorLink&) = delete;
  CoordinatorLink& operator=(const CoordinatorLink&) = delete;

  // Where the coordinator reaches this agent, and its framed port when it
  // has one (each enlistment names both); set once the servers listen.
  void set_endpoint(const std::string& endpoint, const std::string& framed_endpoint = "");

  ~CoordinatorLink() override;

  absl::Status Enlist(const std::string& txid, uint64_t branch_token, bool prepared) override;
  // Sent on gRPC's callback API, batched the same way: while
  // kMaxEnlistsInFlight such RPCs are out, later ones queue, and each RPC's
  // end sends what queued (up to kMaxEnlistBatch) as one EnlistBatch.
  // `done` runs on a gRPC thread. The destructor waits for every answer.
  void EnlistAsync(const std::string& txid, uint64_t branch_token, bool prepared,
                   std::function<void(absl::Status)> done) override;
  // Waits until every EnlistAsync made so far (and what queued behind it)
  // is answered, or until `deadline`; true if none is left. For a clean
  // stop, so that the votes sent last reach the coordinator.
  bool AwaitAsyncEnlists(absl::Time deadline);
  // Blocks for the RPC (at most rpc_timeout): run it where waiting delays
  // nothing else (txagent: a thread of its own for the resolver's queries).
  absl::StatusOr<RemoteOutcome> QueryOutcome(const std::string& txid);
  // The key of the latest OK Enlist answer that carried one, for txids of
  // the cluster and epoch of the txid that answer was for.
  std::optional<VoteSigning> VoteSigningFor(const std::string& txid) override;

  // EnlistBatch calls sent so far and the enlistments they carried, and
  // callers waiting for their turn now (for tests and metrics).
  int64_t batches_sent();
  int64_t batched_enlistments();
  size_t waiting();
  // Where Enlists go framed now (empty: gRPC), and Enlist and EnlistBatch
  // calls answered there and sent again over gRPC after a framed failure.
  std::string framed_endpoint();
  int64_t framed_calls() { return framed_calls_.load(std::memory_order_relaxed); }
  int64_t framed_fallbacks() { return framed_fallbacks_.load(std::memory_order_relaxed); }

 private:
  // One caller's Enlist while it waits its turn.
  struct Waiter {
    v1::EnlistRequest request;
    absl::Status result;
    bool answered = false;
    bool send_alone = false;    // the coordinator has no EnlistBatch
    std::vector<Waiter*> lead;  // non-empty: send these (self first)
  };

  // One asynchronous enlistment while it is queued or in flight.
  struct Queued {
    v1::EnlistRequest request;
    std::function<void(absl::Status)> done;
  };
  // One asynchronous Enlist or EnlistBatch call, until its end.
  struct AsyncCall;
  // Sends `batch` (an Enlist for one, else an EnlistBatch); its end
  // answers each and sends what queued meanwhile.
  void SendAsync(std::vector<Queued> batch);
  // `call` over gRPC's callback API.
  void SendAsyncGrpc(AsyncCall* call);
  // Ends `call`: answers each enlistment and sends what queued meanwhile.
  void FinishAsync(AsyncCall* call, absl::Status status);

  // The coordinator's framed port, if an answer named one.
  std::shared_ptr<FramedChannel> Framed() ABSL_LOCKS_EXCLUDED(mu_);
  // An OK answer named `framed_endpoint` (empty: none).
  void NoteFramed(const std::string& framed_endpoint) ABSL_LOCKS_EXCLUDED(mu_);
  // How a framed call on `channel` ended: true when it should go over
  // gRPC (the port is then held down), else it is counted.
  bool FramedFailed(const FramedChannel& channel, const absl::Status& status,
                    FramedChannel::Progress progress) ABSL_LOCKS_EXCLUDED(mu_);
  // `request` on the framed port when an answer named one, else (or when
  // the port never saw it) by `grpc_call(context, request, response)`,
  // blocking, all within rpc_timeout.
  template <typename Request, typename Response, typename GrpcCall>
  absl::Status CallBlocking(FrameMethod method, const Request& request, Response* response,
                            GrpcCall grpc_call);
  // Runs `job` on one of the link's framed threads.
  void RunFramed(std::function<void()> job) ABSL_LOCKS_EXCLUDED(mu_);
  void FramedWorker() ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status SendOne(const v1::EnlistRequest& request);
  // Sends `group` (its first member is the caller) as one EnlistBatch and
  // answers every member but the first; returns the first one's result.
  absl::Status SendGroup(std::vector<Waiter*> group);
  // An Enlist RPC of this caller ended: its slot goes to the waiters.
  void HandOff();
  // Keeps the vote key of each OK answer of an EnlistBatch (`results`, as
  // AnswersOf gives them).
  void NoteVoteKeys(const v1::EnlistBatchRequest& request, const v1::EnlistBatchResponse& response,
                    const std::vector<absl::Status>& results);

  std::unique_ptr<v1::Coordinator::Stub> stub_;
  const std::string name_;
  const absl::Duration rpc_timeout_;
  Clock* const clock_;
  absl::Mutex mu_;
  std::string endpoint_ ABSL_GUARDED_BY(mu_);
  std::string framed_endpoint_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Waiter*> waiting_ ABSL_GUARDED_BY(mu_);
  absl::Time singles_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t batches_sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t batched_enlistments_ ABSL_GUARDED_BY(mu_) = 0;
  int async_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Queued> queued_ ABSL_GUARDED_BY(mu_);
  VoteKeyHolder vote_key_{clock_};

  const bool framed_allowed_;
  std::shared_ptr<FramedChannel> framed_ ABSL_GUARDED_BY(mu_);
  absl::Time framed_held_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration framed_next_hold_ ABSL_GUARDED_BY(mu_) = absl::Seconds(30);
  std::deque<std::function<void()>> framed_jobs_ ABSL_GUARDED_BY(mu_);
  int framed_idle_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> framed_threads_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> framed_calls_{0};
  std::atomic<int64_t> framed_fallbacks_{0};
};

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_COORDINATOR_LINK_H_
