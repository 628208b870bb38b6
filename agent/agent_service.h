// txagent's gRPC face: the Participant service (the coordinator's phase 1
// and 2) and the Agent service (a service's SQL), both translating to a
// participant::Participant. Wire limits, and the UTF-8 of SQL and TEXT
// parameters (proto `bytes`), are checked here.
#ifndef TXCOORD_AGENT_AGENT_SERVICE_H_
#define TXCOORD_AGENT_AGENT_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <utility>
#include <vector>

#include "common/inflight.h"
#include "participant/participant.h"
#include "rpc/access_policy.h"
#include "rpc/frame.h"
#include "rpc/frame_server.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::participant {

inline constexpr int kMaxStatements = 256;
inline constexpr size_t kMaxSqlBytes = 65536;
inline constexpr int kMaxParams = 256;
inline constexpr uint32_t kMaxLockTimeoutMs = 60000;

class ParticipantService final : public v1::Participant::Service {
 public:
  // `participant` and `policy` must outlive the service. Every method
  // admits its caller with `policy` first (rpc/access_policy.h);
  // nullptr: no checks.
  explicit ParticipantService(Participant* participant, const AccessPolicy* policy = nullptr)
      : participant_(participant), policy_(policy) {}

  grpc::Status Prepare(grpc::ServerContext* context, const v1::PrepareRequest* request,
                       v1::PrepareResponse* response) override;
  grpc::Status Commit(grpc::ServerContext* context, const v1::BranchRequest* request,
                      v1::BranchResponse* response) override;
  grpc::Status Abort(grpc::ServerContext* context, const v1::BranchRequest* request,
                     v1::BranchResponse* response) override;
  grpc::Status CommitOnePhase(grpc::ServerContext* context, const v1::BranchRequest* request,
                              v1::CommitOnePhaseResponse* response) override;
  grpc::Status Batch(grpc::ServerContext* context, const v1::BatchRequest* request,
                     v1::BatchResponse* response) override;

  // The five calls above on the framed port (docs/protocol.md, "The framed
  // port"), one (method, handler) pair each for FrameMethods: checked
  // against `policy` (nullptr: no checks) and counted in `inflight`
  // (nullptr: not counted). The service must outlive the server.
  std::vector<std::pair<FrameMethod, FrameServer::Handler>> FramedCalls(const AccessPolicy* policy,
                                                                        InflightTracker* inflight);

 private:
  // Each call once its caller is admitted: the gRPC method's and the
  // framed port's.
  grpc::Status ServePrepare(const v1::PrepareRequest& request, v1::PrepareResponse* response);
  grpc::Status ServeCommit(const v1::BranchRequest& request, v1::BranchResponse* response);
  grpc::Status ServeAbort(const v1::BranchRequest& request, v1::BranchResponse* response);
  grpc::Status ServeCommitOnePhase(const v1::BranchRequest& request,
                                   v1::CommitOnePhaseResponse* response);
  grpc::Status ServeBatch(const v1::BatchRequest& request, v1::BatchResponse* response);

  Participant* const participant_;
  const AccessPolicy* const policy_;
};

class AgentService final : public v1::Agent::Service {
 public:
  explicit AgentService(Participant* participant) : participant_(participant) {}

  grpc::Status Execute(grpc::ServerContext* context, const v1::ExecuteRequest* request,
                       v1::ExecuteResponse* response) override;
  grpc::Status Release(grpc::ServerContext* context, const v1::ReleaseRequest* request,
                       v1::ReleaseResponse* response) override;
  grpc::Status Publish(grpc::ServerContext* context, const v1::PublishRequest* request,
                       v1::PublishResponse* response) override;

  // Execute on the framed port (docs/protocol.md, "The framed port";
  // started by StartFramedFromFlags): checked against `policy` (nullptr:
  // no checks) and counted in `inflight` (nullptr: not counted). The
  // service must outlive the server.
  FrameServer::Handler FramedExecute(const AccessPolicy* policy, InflightTracker* inflight);

 private:
  // Execute with its deadline given: the gRPC method's and the framed
  // port's.
  grpc::Status ServeExecute(const v1::ExecuteRequest& request, absl::Time deadline,
                            v1::ExecuteResponse* response);

  Participant* const participant_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_AGENT_SERVICE_H_
