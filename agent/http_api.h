// txagent's HTTP/JSON API (docs/http.md): Execute and Release for services,
// the AgentAdmin calls and the Prometheus text for operators. Each route is
// answered by the agent's own gRPC services through an in-process channel,
// so both ports check and mean the same.
#ifndef TXCOORD_AGENT_HTTP_API_H_
#define TXCOORD_AGENT_HTTP_API_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rpc/http_server.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace txcoord::participant {

// Routes over `channel` (the gRPC server's in-process channel, which must
// outlive them). `metrics` renders the agent's Prometheus page; it is called
// on the HTTP server's threads.
std::vector<HttpRoute> AgentHttpRoutes(std::shared_ptr<grpc::Channel> channel,
                                       std::function<std::string()> metrics);

}  // namespace txcoord::participant

#endif  // TXCOORD_AGENT_HTTP_API_H_
