// Etcd (cluster/etcd.h) over etcd's v3 gRPC API, for the daemons, txctl and
// client programs: KV Range/Put/DeleteRange/Txn, Lease Grant/KeepAlive/Revoke
// and Watch, against one or more members of one etcd cluster (3.4 or newer).
//
//   EtcdClientOptions options;
//   options.endpoints = *ParseRegistryUrl("etcd://10.0.0.1:2379,10.0.0.2:2379");
//   EtcdClient etcd(std::move(options));
//   absl::StatusOr<int64_t> revision = etcd.Put("/txcoord/config/orders/x", "5s");
#ifndef TXCOORD_CLUSTER_ETCD_CLIENT_H_
#define TXCOORD_CLUSTER_ETCD_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/etcd.h"

namespace grpc {
class ChannelCredentials;
class ClientContext;
class Status;
}  // namespace grpc

namespace txcoord::cluster {

struct EtcdClientOptions {
  // "HOST:PORT" of the members to talk to, in order of preference (as
  // ParseRegistryUrl returns them). At least one.
  std::vector<std::string> endpoints;
  // The deadline of one attempt at one member; a call that fails over may
  // take up to this times the number of endpoints.
  absl::Duration call_timeout = absl::Seconds(2);
  // TLS towards etcd; nullptr: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Thread-safe. Calls go to the endpoint that answered last (the first one
// at the start). An attempt that fails with UNAVAILABLE or
// DEADLINE_EXCEEDED (member down or unreachable, or cut off from its
// quorum: a call waits for a leader until its deadline, a watch or
// keep-alive stream is refused at once) moves on to the next endpoint, each
// tried once per call; when none answers the call fails with UNAVAILABLE
// "etcd unreachable at A,B,C: <last error>".
//
// A write that failed over may have been applied by the member that did not
// answer in time: Put is then applied twice (harmless), but PutIf can
// answer false and Delete 0 for a write that did happen. Re-read the key
// when that matters. GrantLease may leave an unused lease, which expires.
//
// Watches open a stream of their own, on a thread of their own, each at the
// current endpoint; a WatchHandle may outlive the client.
class EtcdClient final : public Etcd {
 public:
  // Opens no connection yet: channels connect on first use. Aborts if
  // options.endpoints is empty or call_timeout not positive.
  explicit EtcdClient(EtcdClientOptions options);
  ~EtcdClient() override;
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  absl::StatusOr<RangeResult> Get(const std::string& key, int64_t revision = 0) override;
  absl::StatusOr<RangeResult> GetPrefix(const std::string& prefix) override;
  absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                              int64_t lease = 0) override;
  absl::StatusOr<bool> PutIf(const std::string& key, const std::string& value,
                             int64_t expected_mod_revision, int64_t lease = 0) override;
  absl::StatusOr<int64_t> Delete(const std::string& key) override;
  absl::StatusOr<TxnResult> Txn(const std::vector<TxnCompare>& compares,
                                const std::vector<TxnOp>& writes) override;
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) override;
  absl::StatusOr<absl::Duration> KeepAlive(int64_t lease) override;
  absl::Status RevokeLease(int64_t lease) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> WatchPrefix(const std::string& prefix,
                                                           int64_t start_revision,
                                                           EventsFn on_events,
                                                           ErrorFn on_error) override;
  std::string Describe() const override;

  // Returns once the member has discarded the history (physical).
  absl::Status Compact(int64_t revision) override;

 private:
  struct Endpoint;
  class Watch;

  // Runs `attempt` against each endpoint in turn, from the current one,
  // with a deadline of call_timeout from when it starts, until one answers
  // with anything but UNAVAILABLE or DEADLINE_EXCEEDED; that endpoint
  // becomes the current one. `attempt` returns what the member said (gRPC
  // status mapped, message as etcd wrote it); this adds which member it was.
  // One unary call with failover: `call` makes it on the given endpoint.
  absl::Status Unary(
      absl::FunctionRef<grpc::Status(const Endpoint& endpoint, grpc::ClientContext* context)> call);
  absl::Status WithFailover(
      absl::FunctionRef<absl::Status(const Endpoint& endpoint, absl::Time deadline)> attempt);

  const absl::Duration call_timeout_;
  const std::vector<std::unique_ptr<Endpoint>> endpoints_;

  absl::Mutex mu_;
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;  // index into endpoints_
};

// What etcd answered, in etcd.h's terms. etcd's own codes mostly match
// (a compacted or future revision: OUT_OF_RANGE; an unknown lease:
// NOT_FOUND; a refused request: INVALID_ARGUMENT; no leader, timeouts:
// UNAVAILABLE). Three do not: OUT_OF_RANGE for a lease TTL above etcd's
// limit, an invalid argument here rather than a lost revision; UNKNOWN
// "raft proposal dropped" from a member without a leader, which applied
// nothing and is worth trying elsewhere (UNAVAILABLE); and UNKNOWN "context
// deadline exceeded", the call's own deadline passing inside etcd
// (DEADLINE_EXCEEDED, as when the client sees it pass).
absl::Status FromEtcdStatus(const grpc::Status& status);

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_ETCD_CLIENT_H_
