#include "cluster/cluster_flags.h"

#include "absl/flags/flag.h"
#include "cluster/node_record.h"

ABSL_FLAG(std::string, registry, "",
          "etcd to register in, discover through and read policy from: "
          "etcd://HOST:PORT[,HOST:PORT...] (docs/cluster.md). Empty: no registry; addresses and "
          "policy come from flags.");
ABSL_FLAG(std::string, registry_prefix, txcoord::cluster::kDefaultPrefix,
          "Key prefix of this deployment in etcd; several deployments can share one etcd.");
ABSL_FLAG(absl::Duration, registry_ttl, absl::Seconds(5),
          "TTL of this daemon's registry lease (whole seconds, at least 1s): after a crash its "
          "record disappears within this. Renewed every third of it.");
ABSL_FLAG(int64_t, registry_weight, 1,
          "This daemon's weight (1..1000) for clients balancing with --balance=weighted.");
