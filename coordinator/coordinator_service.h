// The Coordinator gRPC service: validates and translates requests and
// responses; every decision is the runtime's.
#ifndef TXCOORD_COORDINATOR_COORDINATOR_SERVICE_H_
#define TXCOORD_COORDINATOR_COORDINATOR_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/inflight.h"
#include "coordinator/runtime.h"
#include "rpc/access_policy.h"
#include "rpc/frame.h"
#include "rpc/frame_server.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::coordinator {

// Served on gRPC's callback API, like every method here: no handler blocks
// (Commit waits for votes and a log sync holding no thread: the decision's
// thread answers it; the others take the runtime's lock and return), so
// calls run on gRPC's own polling threads with no hand-off to a pool.
class CoordinatorService final : public v1::Coordinator::CallbackService {
 public:
  // `runtime` and `policy` must outlive the service. The role of each
  // caller is checked before any handler runs (rpc/daemon.h); here
  // `policy` also checks that an agent enlists and asks only under the
  // participant names bound to it. nullptr: no checks.
  explicit CoordinatorService(Runtime* runtime, const AccessPolicy* policy = nullptr)
      : runtime_(runtime), policy_(policy) {}

  grpc::ServerUnaryReactor* Begin(grpc::CallbackServerContext* context,
                                  const v1::BeginRequest* request,
                                  v1::BeginResponse* response) override {
    return Answer(context, ServeBegin(request, response));
  }
  grpc::ServerUnaryReactor* ReserveTxids(grpc::CallbackServerContext* context,
                                         const v1::ReserveTxidsRequest* request,
                                         v1::ReserveTxidsResponse* response) override {
    return Answer(context, ServeReserveTxids(request, response));
  }
  grpc::ServerUnaryReactor* Enlist(grpc::CallbackServerContext* context,
                                   const v1::EnlistRequest* request,
                                   v1::EnlistResponse* response) override {
    if (grpc::Status s = AdmitName(*context, "Enlist", request->participant()); !s.ok()) {
      return Answer(context, s);
    }
    return Answer(context, ServeEnlist(request, response));
  }
  grpc::ServerUnaryReactor* EnlistBatch(grpc::CallbackServerContext* context,
                                        const v1::EnlistBatchRequest* request,
                                        v1::EnlistBatchResponse* response) override {
    // Every name is checked before the first enlistment changes anything.
    for (const v1::EnlistRequest& enlistment : request->enlistments()) {
      if (grpc::Status s = AdmitName(*context, "EnlistBatch", enlistment.participant()); !s.ok()) {
        return Answer(context, s);
      }
    }
    return Answer(context, ServeEnlistBatch(request, response));
  }
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const v1::CommitRequest* request,
                                   v1::CommitResponse* response) override;
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* context,
                                  const v1::AbortRequest* request,
                                  v1::AbortResponse* response) override {
    return Answer(context, ServeAbort(request, response));
  }
  grpc::ServerUnaryReactor* GetTransaction(grpc::CallbackServerContext* context,
                                           const v1::GetTransactionRequest* request,
                                           v1::Transaction* response) override {
    return Answer(context, ServeGetTransaction(request, response));
  }
  grpc::ServerUnaryReactor* QueryOutcome(grpc::CallbackServerContext* context,
                                         const v1::QueryOutcomeRequest* request,
                                         v1::QueryOutcomeResponse* response) override {
    if (grpc::Status s = AdmitName(*context, "QueryOutcome", request->participant()); !s.ok()) {
      return Answer(context, s);
    }
    return Answer(context, ServeQueryOutcome(request, response));
  }

  // Commit on the framed port (docs/protocol.md, "The framed port";
  // started by StartFramedFromFlags): checked against the service's policy
  // and counted in `inflight` (nullptr: not counted). The connection's
  // thread waits for the decision. The service must outlive the server.
  // Commit, Enlist and EnlistBatch on the framed port (StartFramedFromFlags),
  // counted in `inflight` (nullptr: not counted). The service must outlive
  // the server.
  std::vector<std::pair<FrameMethod, FrameServer::Handler>> FramedCalls(InflightTracker* inflight);
  // The framed port agents may send Enlist and EnlistBatch to, named in
  // every Enlist answer from now on; empty (the default): none.
  void set_framed_endpoint(std::string endpoint) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    framed_endpoint_ = std::move(endpoint);
  }

  // Called with the endpoint and framed_endpoint (empty when it names
  // none) of each enlistment accepted, so that the participants' calls can
  // go to the framed port (FramedParticipantTransport::NoteFramedEndpoint).
  // Set before serving.
  void OnFramedEndpoint(
      std::function<void(const std::string& endpoint, const std::string& framed)> note) {
    on_framed_endpoint_ = std::move(note);
  }

 private:
  // Commit with its deadline given (none: a default wait), the gRPC
  // method's and the framed port's: `done` runs exactly once, on the
  // thread that decides (or at once for a refused request), once
  // `response` is filled or with the error. `response` must live until
  // then.
  void ServeCommit(const v1::CommitRequest& request, absl::Time deadline,
                   v1::CommitResponse* response, std::function<void(absl::Status)> done);
  static grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context,
                                          const grpc::Status& status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
  // OK if the caller may act for `participant` (method: "Enlist", ...).
  grpc::Status AdmitName(const grpc::ServerContextBase& context, absl::string_view method,
                         absl::string_view participant) const;
  grpc::Status ServeBegin(const v1::BeginRequest* request, v1::BeginResponse* response);
  grpc::Status ServeReserveTxids(const v1::ReserveTxidsRequest* request,
                                 v1::ReserveTxidsResponse* response);
  absl::Status EnlistOne(const v1::EnlistRequest& request);
  // An OK answer carries the participant's vote key (Runtime::VoteKey).
  grpc::Status ServeEnlist(const v1::EnlistRequest* request, v1::EnlistResponse* response);
  grpc::Status ServeEnlistBatch(const v1::EnlistBatchRequest* request,
                                v1::EnlistBatchResponse* response);
  grpc::Status ServeAbort(const v1::AbortRequest* request, v1::AbortResponse* response);
  grpc::Status ServeGetTransaction(const v1::GetTransactionRequest* request,
                                   v1::Transaction* response);
  grpc::Status ServeQueryOutcome(const v1::QueryOutcomeRequest* request,
                                 v1::QueryOutcomeResponse* response);

  Runtime* const runtime_;
  const AccessPolicy* const policy_;
  std::function<void(const std::string&, const std::string&)> on_framed_endpoint_;
  mutable absl::Mutex mu_;
  std::string framed_endpoint_ ABSL_GUARDED_BY(mu_);
};

// Engine view -> proto, shared with the admin service.
void ToProto(const TransactionView& view, v1::Transaction* out);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_COORDINATOR_SERVICE_H_
