// One gRPC channel per target for the whole process, shared by every Client
// and AgentClient that talks to it: a channel is a pool of connections, and
// opening one per object would multiply connections and handshakes.
//
//   std::shared_ptr<grpc::Channel> channel = txcoord::SharedChannel("127.0.0.1:7000");
#ifndef TXCOORD_CLIENT_CHANNEL_CACHE_H_
#define TXCOORD_CLIENT_CHANNEL_CACHE_H_

#include <memory>
#include <string>

namespace grpc {
class Channel;
}  // namespace grpc

namespace txcoord {

// Returns the process's insecure channel to `target` ("host:port"), made by
// MakeChannel on first use. The cache holds channels weakly: a channel closes
// once the last holder drops it, and the next call makes a new one.
// Thread-safe.
std::shared_ptr<grpc::Channel> SharedChannel(const std::string& target);

}  // namespace txcoord

#endif  // TXCOORD_CLIENT_CHANNEL_CACHE_H_
