// The coordinator's HTTP/JSON API (docs/http.md): Begin, Commit, Abort and
// GetTransaction for clients, the CoordinatorAdmin calls for operators and
// the console, each answered by the daemon's own gRPC service through an
// in-process channel, so both ports check and mean the same.
#ifndef TXCOORD_COORDINATOR_HTTP_API_H_
#define TXCOORD_COORDINATOR_HTTP_API_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rpc/http_server.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace txcoord::coordinator {

// Where the calls on a txid this coordinator did not issue belong (cluster
// mode, docs/cluster.md): "http://HOST:PORT" of the owner's HTTP port, or
// empty to answer here (a txid of this coordinator, or an owner unknown or
// without HTTP: the answer is then this coordinator's own error).
using TxidOwnerFn = std::function<std::string(const std::string& txid)>;

// Routes over `channel` (the gRPC server's in-process channel, which must
// outlive them). `metrics` renders the Prometheus page for the console.
// With `owner`, every route on one txid redirects (307) to its owner.
std::vector<HttpRoute> CoordinatorHttpRoutes(std::shared_ptr<grpc::Channel> channel,
                                             std::function<std::string()> metrics,
                                             TxidOwnerFn owner = nullptr);

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_HTTP_API_H_
