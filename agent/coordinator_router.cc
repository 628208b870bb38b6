#include "agent/coordinator_router.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rpc/grpc_util.h"

namespace txcoord::participant {

CoordinatorRouter::CoordinatorRouter(std::shared_ptr<cluster::CoordinatorDirectory> directory,
                                     std::shared_ptr<grpc::ChannelCredentials> credentials,
                                     std::string participant_name, absl::Duration rpc_timeout)
    : directory_(std::move(directory)),
      credentials_(std::move(credentials)),
      name_(std::move(participant_name)),
      rpc_timeout_(rpc_timeout) {}

void CoordinatorRouter::set_endpoint(const std::string& endpoint,
                                     const std::string& framed_endpoint) {
  absl::MutexLock lock(&mu_);
  endpoint_ = endpoint;
  framed_endpoint_ = framed_endpoint;
  for (auto& [target, link] : links_) link->set_endpoint(endpoint, framed_endpoint);
}

absl::StatusOr<CoordinatorLink*> CoordinatorRouter::LinkFor(const std::string& txid) {
  absl::StatusOr<cluster::CoordinatorChoice> owner = directory_->Owner(txid);
  if (!owner.ok()) {
    if (owner.status().code() != absl::StatusCode::kNotFound) return owner.status();
    return absl::UnavailableError(absl::StrCat("the coordinator that owns ", txid,
                                               " is not reachable: ", owner.status().message()));
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<CoordinatorLink>& link = links_[owner->endpoint];
  if (link == nullptr) {
    // Plain TCP to the coordinator's framed port only without TLS to it.
    link = std::make_unique<CoordinatorLink>(MakeChannel(owner->endpoint, credentials_), name_,
                                             rpc_timeout_, RealClock(),
                                             /*framed_allowed=*/credentials_ == nullptr);
    if (!endpoint_.empty()) link->set_endpoint(endpoint_, framed_endpoint_);
  }
  return link.get();
}

absl::Status CoordinatorRouter::Enlist(const std::string& txid, uint64_t branch_token,
                                       bool prepared) {
  absl::StatusOr<CoordinatorLink*> link = LinkFor(txid);
  if (!link.ok()) return link.status();
  return (*link)->Enlist(txid, branch_token, prepared);
}

void CoordinatorRouter::EnlistAsync(const std::string& txid, uint64_t branch_token, bool prepared,
                                    std::function<void(absl::Status)> done) {
  absl::StatusOr<CoordinatorLink*> link = LinkFor(txid);
  if (!link.ok()) {
    done(link.status());
    return;
  }
  (*link)->EnlistAsync(txid, branch_token, prepared, std::move(done));
}

std::optional<Enlister::VoteSigning> CoordinatorRouter::VoteSigningFor(const std::string& txid) {
  absl::StatusOr<CoordinatorLink*> link = LinkFor(txid);
  if (!link.ok()) return std::nullopt;
  return (*link)->VoteSigningFor(txid);
}

absl::StatusOr<RemoteOutcome> CoordinatorRouter::QueryOutcome(const std::string& txid) {
  absl::StatusOr<CoordinatorLink*> link = LinkFor(txid);
  if (!link.ok()) return link.status();
  return (*link)->QueryOutcome(txid);
}

bool CoordinatorRouter::AwaitAsyncEnlists(absl::Time deadline) {
  std::vector<CoordinatorLink*> links;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [target, link] : links_) links.push_back(link.get());
  }
  bool all = true;
  for (CoordinatorLink* link : links) all = link->AwaitAsyncEnlists(deadline) && all;
  return all;
}

int64_t CoordinatorRouter::SumOverLinks(int64_t (CoordinatorLink::*count)()) {
  absl::MutexLock lock(&mu_);
  int64_t total = 0;
  for (auto& [target, link] : links_) total += ((*link).*count)();
  return total;
}

int64_t CoordinatorRouter::batches_sent() { return SumOverLinks(&CoordinatorLink::batches_sent); }
int64_t CoordinatorRouter::batched_enlistments() {
  return SumOverLinks(&CoordinatorLink::batched_enlistments);
}
int64_t CoordinatorRouter::framed_calls() { return SumOverLinks(&CoordinatorLink::framed_calls); }
int64_t CoordinatorRouter::framed_fallbacks() {
  return SumOverLinks(&CoordinatorLink::framed_fallbacks);
}

}  // namespace txcoord::participant
