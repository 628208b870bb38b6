// The CoordinatorAdmin gRPC service (proto/txcoord/v1/admin.proto): what
// txctl calls to list, inspect, retry, abort and settle transactions.
// Validates and translates only; every decision is the runtime's.
#ifndef TXCOORD_COORDINATOR_ADMIN_SERVICE_H_
#define TXCOORD_COORDINATOR_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "coordinator/runtime.h"
#include "rpc/access_policy.h"
#include "txcoord/v1/admin.grpc.pb.h"

namespace txcoord::coordinator {

inline constexpr uint32_t kDefaultPageSize = 100;
inline constexpr uint32_t kMaxPageSize = 1000;
inline constexpr size_t kMaxNoteBytes = 1024;

// Thread-safe (the runtime is).
class AdminService final : public v1::CoordinatorAdmin::Service {
 public:
  // `runtime` and `policy` must outlive the service. Every method admits
  // its caller with `policy` first (nullptr: no checks).
  explicit AdminService(Runtime* runtime, const AccessPolicy* policy = nullptr)
      : runtime_(runtime), policy_(policy) {}
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;

  grpc::Status ListTransactions(grpc::ServerContext* context,
                                const v1::ListTransactionsRequest* request,
                                v1::ListTransactionsResponse* response) override;
  grpc::Status GetTransaction(grpc::ServerContext* context,
                              const v1::GetTransactionRequest* request,
                              v1::Transaction* response) override;
  grpc::Status RetryPhase2(grpc::ServerContext* context, const v1::RetryPhase2Request* request,
                           v1::AdminActionResponse* response) override;
  grpc::Status ForceAbort(grpc::ServerContext* context, const v1::ForceAbortRequest* request,
                          v1::AdminActionResponse* response) override;
  grpc::Status MarkBranchDone(grpc::ServerContext* context,
                              const v1::MarkBranchDoneRequest* request,
                              v1::AdminActionResponse* response) override;

 private:
  Runtime* const runtime_;
  const AccessPolicy* const policy_;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_ADMIN_SERVICE_H_
