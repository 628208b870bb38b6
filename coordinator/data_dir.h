// The coordinator's data directory: an exclusive lock (one daemon per
// directory), the cluster id that names its txids, and the epoch that grows
// durably on every start so that txids never repeat across restarts.
// Layout: LOCK, CLUSTER_ID, EPOCH, wal/.
#ifndef TXCOORD_COORDINATOR_DATA_DIR_H_
#define TXCOORD_COORDINATOR_DATA_DIR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace txcoord::coordinator {

class DataDir final {
 public:
  // Creates the directory if needed, takes its lock, settles the cluster id
  // (`cluster_id` empty: the stored one, or a new random one; otherwise it
  // must match the stored one) and makes epoch+1 durable.
  static absl::StatusOr<std::unique_ptr<DataDir>> Open(const std::string& path,
                                                       const std::string& cluster_id);
  ~DataDir();  // releases the lock
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  const std::string& path() const { return path_; }
  const std::string& cluster_id() const { return cluster_id_; }
  uint64_t epoch() const { return epoch_; }
  std::string wal_dir() const { return path_ + "/wal"; }

 private:
  DataDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}

  std::string path_;
  int lock_fd_;
  std::string cluster_id_;
  uint64_t epoch_ = 0;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_DATA_DIR_H_
