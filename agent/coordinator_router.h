// Routes txagent's calls to the coordinator that owns each txid: one
// CoordinatorLink (with its Enlist batching) per coordinator endpoint,
// chosen through a CoordinatorDirectory. With one static coordinator
// (no --registry) every txid goes to it.
#ifndef TXCOORD_AGENT_COORDINATOR_ROUTER_H_
#define TXCOORD_AGENT_COORDINATOR_ROUTER_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/coordinator_link.h"
#include "cluster/coordinator_directory.h"
#include "participant/in_doubt_resolver.h"
#include "participant/participant.h"

namespace txcoord::participant {

// Thread-safe.
class CoordinatorRouter final : public Enlister {
 public:
  // `credentials` nullptr: insecure channels.
  CoordinatorRouter(std::shared_ptr<cluster::CoordinatorDirectory> directory,
                    std::shared_ptr<grpc::ChannelCredentials> credentials,
                    std::string participant_name, absl::Duration rpc_timeout);
  CoordinatorRouter(const CoordinatorRouter&) = delete;
  CoordinatorRouter& operator=(const CoordinatorRouter&) = delete;

  // Where coordinators reach this agent, and its framed port when it has
  // one (CoordinatorLink::set_endpoint); set once the servers listen.
  void set_endpoint(const std::string& endpoint, const std::string& framed_endpoint = "");

  // To the txid's owner. An owner that is not registered (its lease
  // expired) is UNAVAILABLE naming it: the outcome is unknown, not refused.
  absl::Status Enlist(const std::string& txid, uint64_t branch_token, bool prepared) override;
  void EnlistAsync(const std::string& txid, uint64_t branch_token, bool prepared,
                   std::function<void(absl::Status)> done) override;
  // Blocks for the RPC (at most rpc_timeout).
  absl::StatusOr<RemoteOutcome> QueryOutcome(const std::string& txid);
  // The signing key of the link to the txid's owner (CoordinatorLink).
  std::optional<VoteSigning> VoteSigningFor(const std::string& txid) override;

  // CoordinatorLink::AwaitAsyncEnlists over every link, all by `deadline`.
  bool AwaitAsyncEnlists(absl::Time deadline);

  // Over every link (metrics).
  int64_t batches_sent();
  int64_t batched_enlistments();
  int64_t framed_calls();
  int64_t framed_fallbacks();

 private:
  // `count` of every link, added up.
  int64_t SumOverLinks(int64_t (CoordinatorLink::*count)()) ABSL_LOCKS_EXCLUDED(mu_);
  // The link to `txid`'s owner, made on first use.
  absl::StatusOr<CoordinatorLink*> LinkFor(const std::string& txid);

  const std::shared_ptr<cluster::CoordinatorDirectory> directory_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const std::string name_;
  const absl::Duration rpc_timeout_;
  absl::Mutex mu_;
  std::string endpoint_ ABSL_GUARDED_BY(mu_);
  std::string framed_endpoint_ ABSL_GUARDED_BY(mu_);
  // One per coordinator endpoint ever used (a handful); links live as long
  // as the router, so callers may hold a link without the lock.
  absl::flat_hash_map<std::string, std::unique_ptr<CoordinatorLink>> links_ ABSL_GUARDED_BY(mu_);
};

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_COORDINATOR_ROUTER_H_
