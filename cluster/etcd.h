// The few etcd v3 operations the cluster code needs (KV, Lease, Watch), as
// an interface: EtcdClient (cluster/etcd_client.h) speaks etcd's gRPC API to
// a real etcd; MemoryEtcd (cluster/memory_etcd.h) is a linearizable store in
// memory for unit tests and the simulator. The registry, discovery and the
// config centre are written against this interface only.
//
// Errors: UNAVAILABLE "etcd unreachable at HOST:PORT,...: ..." when no
// endpoint answered; OUT_OF_RANGE when a read or watch asks for a revision
// etcd has compacted; NOT_FOUND for a lease that expired or was revoked;
// INVALID_ARGUMENT for a request etcd refuses.
#ifndef TXCOORD_CLUSTER_ETCD_H_
#define TXCOORD_CLUSTER_ETCD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace txcoord::cluster {

// One key as etcd stores it.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;  // the revision of the write that set this value
  int64_t version = 0;       // writes since the key was (re)created
  int64_t lease = 0;         // 0: no lease
};

// A read: the keys found (sorted by key) and the store's revision at the
// time of the read (the revision a watch continues from, plus one).
struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: the key and mod_revision of the delete only
};

// One comparison of a transaction: `key`'s create or mod revision equals
// `revision` (a missing key has both at 0).
struct TxnCompare {
  enum class Target { kCreateRevision, kModRevision };
  std::string key;
  Target target = Target::kModRevision;
  int64_t revision = 0;
};

// One write of a transaction. kDeletePrefix deletes every key that starts
// with `key`. etcd refuses a transaction that writes one key twice or puts
// a key inside a prefix it deletes (INVALID_ARGUMENT).
struct TxnOp {
  enum class Type { kPut, kDelete, kDeletePrefix };
  Type type = Type::kPut;
  std::string key;
  std::string value;
  int64_t lease = 0;
};

struct TxnResult {
  bool succeeded = false;  // every comparison held, and the writes were made
  int64_t revision = 0;    // the store's revision after the transaction
};

// Stops a watch when destroyed: no callback runs once the destructor has
// returned. Must not be destroyed from inside its own callbacks.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

// Thread-safe.
class Etcd {
 public:
  virtual ~Etcd() = default;

  // The value of `key` as of `revision` (0: the latest). kvs is empty when
  // the key did not exist then.
  virtual absl::StatusOr<RangeResult> Get(const std::string& key, int64_t revision = 0) = 0;
  // Every key that starts with `prefix`, sorted, as of the latest revision.
  virtual absl::StatusOr<RangeResult> GetPrefix(const std::string& prefix) = 0;
  // Sets `key`, attached to `lease` (0: none). Returns the new revision.
  virtual absl::StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                                      int64_t lease = 0) = 0;
  // Sets `key` only if its mod_revision is `expected_mod_revision` (0: only
  // if the key does not exist), in one etcd transaction. Returns whether
  // the write happened.
  virtual absl::StatusOr<bool> PutIf(const std::string& key, const std::string& value,
                                     int64_t expected_mod_revision, int64_t lease = 0) = 0;
  // Deletes `key`; returns how many keys were deleted (0 or 1).
  virtual absl::StatusOr<int64_t> Delete(const std::string& key) = 0;
  // If every comparison holds, makes every write, all at one revision;
  // otherwise writes nothing (succeeded = false). At most 128 writes (etcd's
  // default --max-txn-ops).
  virtual absl::StatusOr<TxnResult> Txn(const std::vector<TxnCompare>& compares,
                                        const std::vector<TxnOp>& writes) = 0;

  // A new lease that expires `ttl` (rounded up to whole seconds, at least
  // one) after its last keep-alive. Returns its id.
  virtual absl::StatusOr<int64_t> GrantLease(absl::Duration ttl) = 0;
  // Renews `lease`; returns its TTL. NOT_FOUND once it has expired.
  virtual absl::StatusOr<absl::Duration> KeepAlive(int64_t lease) = 0;
  // Ends `lease` now, deleting its keys. OK for an unknown lease.
  virtual absl::Status RevokeLease(int64_t lease) = 0;

  // Watches every key that starts with `prefix`, from `start_revision`
  // (0: from now). `on_events` gets the changes in revision order, each
  // call with the revision they bring the view to; `on_error` is called at
  // most once, when the watch ends without being stopped (etcd unreachable,
  // OUT_OF_RANGE when start_revision was compacted); nothing is called
  // after it. Callbacks run on a thread of the implementation's, one at a
  // time, never inside WatchPrefix.
  using EventsFn = std::function<void(const std::vector<WatchEvent>& events, int64_t revision)>;
  using ErrorFn = std::function<void(const absl::Status& status)>;
  virtual absl::StatusOr<std::unique_ptr<WatchHandle>> WatchPrefix(const std::string& prefix,
                                                                   int64_t start_revision,
                                                                   EventsFn on_events,
                                                                   ErrorFn on_error) = 0;

  // Discards the history before `revision` (cluster-wide): reads and
  // watches of older revisions get OUT_OF_RANGE from then on. OUT_OF_RANGE
  // if `revision` is compacted already or not reached yet.
  virtual absl::Status Compact(int64_t revision) = 0;

  // "etcd at HOST:PORT,HOST:PORT": for error messages.
  virtual std::string Describe() const = 0;
};

// Parses --registry: "etcd://HOST:PORT[,HOST:PORT...]" into its endpoints.
// INVALID_ARGUMENT naming what is wrong otherwise.
absl::StatusOr<std::vector<std::string>> ParseRegistryUrl(const std::string& url);

}  // namespace txcoord::cluster

#endif  // TXCOORD_CLUSTER_ETCD_H_
