// The Coordinator gRPC service: validates and translates requests and
// responses; every decision is the runtime's.
#ifndef TXCOORD_COORDINATOR_COORDINATOR_SERVICE_H_
#define TXCOORD_COORDINATOR_COORDINATOR_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "coordinator/runtime.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::coordinator {

// Commit is served on gRPC's callback API: it waits for votes and a log
// sync, and a waiting call holds no thread (the decision's thread answers
// it). The other methods return at once and stay synchronous.
class CoordinatorService final
    : public v1::Coordinator::WithCallbackMethod_Commit<v1::Coordinator::Service> {
 public:
  // `runtime` must outlive the service.
  explicit CoordinatorService(Runtime* runtime) : runtime_(runtime) {}

  grpc::Status Begin(grpc::ServerContext* context, const v1::BeginRequest* request,
                     v1::BeginResponse* response) override;
  grpc::Status Enlist(grpc::ServerContext* context, const v1::EnlistRequest* request,
                      v1::EnlistResponse* response) override;
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* context,
                                   const v1::CommitRequest* request,
                                   v1::CommitResponse* response) override;
  grpc::Status Abort(grpc::ServerContext* context, const v1::AbortRequest* request,
                     v1::AbortResponse* response) override;
  grpc::Status GetTransaction(grpc::ServerContext* context,
                              const v1::GetTransactionRequest* request,
                              v1::Transaction* response) override;
  grpc::Status QueryOutcome(grpc::ServerContext* context, const v1::QueryOutcomeRequest* request,
                            v1::QueryOutcomeResponse* response) override;

 private:
  Runtime* const runtime_;
};

// Engine view -> proto, shared with the admin service.
void ToProto(const TransactionView& view, v1::Transaction* out);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_COORDINATOR_SERVICE_H_
