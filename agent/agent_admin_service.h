// txagent's AgentAdmin gRPC service (proto/txcoord/v1/admin.proto): what
// txctl calls to list in-doubt branches and to force their outcome when the
// coordinator cannot give it (a heuristic decision), and to inspect and
// repair the outbox. Translates only; the
// participant core decides and records.
#ifndef TXCOORD_AGENT_AGENT_ADMIN_SERVICE_H_
#define TXCOORD_AGENT_AGENT_ADMIN_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "agent/outbox_relay.h"
#include "participant/participant.h"
#include "rpc/access_policy.h"
#include "txcoord/v1/admin.grpc.pb.h"

namespace txcoord::participant {

inline constexpr size_t kMaxReasonBytes = 1024;

// Thread-safe (the participant is).
class AgentAdminService final : public v1::AgentAdmin::Service {
 public:
  // `participant` must outlive the service. `name` and `coordinator_address`
  // are reported by ListInDoubt so that an operator knows whom to ask.
  // Every method admits its caller with `policy` first (which must outlive
  // the service; nullptr: no checks). `relay` (may be null) is reported by
  // ListOutbox; it must outlive the service too.
  AgentAdminService(Participant* participant, std::string name, std::string coordinator_address,
                    const AccessPolicy* policy = nullptr, const OutboxRelay* relay = nullptr)
      : participant_(participant),
        name_(std::move(name)),
        coordinator_address_(std::move(coordinator_address)),
        policy_(policy),
        relay_(relay) {}
  AgentAdminService(const AgentAdminService&) = delete;
  AgentAdminService& operator=(const AgentAdminService&) = delete;

  grpc::Status ListInDoubt(grpc::ServerContext* context, const v1::ListInDoubtRequest* request,
                           v1::ListInDoubtResponse* response) override;
  grpc::Status ResolveBranch(grpc::ServerContext* context, const v1::ResolveBranchRequest* request,
                             v1::HeuristicDecision* response) override;
  grpc::Status ListHeuristics(grpc::ServerContext* context,
                              const v1::ListHeuristicsRequest* request,
                              v1::ListHeuristicsResponse* response) override;
  grpc::Status ListOutbox(grpc::ServerContext* context, const v1::ListOutboxRequest* request,
                          v1::ListOutboxResponse* response) override;
  grpc::Status GetOutboxMessage(grpc::ServerContext* context,
                                const v1::GetOutboxMessageRequest* request,
                                v1::OutboxEntry* response) override;
  grpc::Status RetryOutbox(grpc::ServerContext* context, const v1::RetryOutboxRequest* request,
                           v1::OutboxActionResponse* response) override;
  grpc::Status PurgeOutbox(grpc::ServerContext* context, const v1::PurgeOutboxRequest* request,
                           v1::OutboxActionResponse* response) override;

 private:
  Participant* const participant_;
  const std::string name_;
  const std::string coordinator_address_;
  const AccessPolicy* const policy_;
  const OutboxRelay* const relay_;
};

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_AGENT_ADMIN_SERVICE_H_
