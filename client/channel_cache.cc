#include "client/channel_cache.h"

#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rpc/grpc_util.h"

namespace txcoord {
namespace {

struct Cache {
  absl::Mutex mu;
  std::map<std::string, std::weak_ptr<grpc::Channel>> channels ABSL_GUARDED_BY(mu);
};

Cache& GlobalCache() {
  // Leaked on purpose: clients destroyed during static destruction may still
  // reach for it.
  static Cache* cache = new Cache;
  return *cache;
}

}  // namespace

std::shared_ptr<grpc::Channel> SharedChannel(const std::string& target) {
  Cache& cache = GlobalCache();
  absl::MutexLock lock(&cache.mu);
  std::weak_ptr<grpc::Channel>& slot = cache.channels[target];
  std::shared_ptr<grpc::Channel> channel = slot.lock();
  if (channel == nullptr) {
    // Creating a channel does no I/O (it connects lazily), so holding the
    // lock here blocks nobody for long.
    channel = MakeChannel(target);
    slot = channel;
  }
  return channel;
}

}  // namespace txcoord
