#include "coordinator/wal/fake_file_system.h"

#include <errno.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace txcoord::wal {
namespace {

std::string CleanDir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir.empty() ? "." : dir;
}

void SplitPath(const std::string& path, std::string* dir, std::string* name) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) {
    *dir = ".";
    *name = path;
  } else {
    *dir = CleanDir(path.substr(0, slash == 0 ? 1 : slash));
    *name = path.substr(slash + 1);
  }
}

absl::Status NotFound(absl::string_view op, absl::string_view path) {
  return absl::NotFoundError(absl::StrCat(op, " ", path, ": No such file or directory"));
}

}  // namespace

// A WritableFile on a node; dead once the file system crashed after it was
// opened, like a descriptor of a process that did not survive.
class FakeFileSystem::Handle final : public WritableFile {
 public:
  Handle(FakeFileSystem* fs, std::shared_ptr<Node> node, std::string path, uint64_t epoch,
         uint64_t position)
      : fs_(fs), node_(std::move(node)), path_(std::move(path)), epoch_(epoch), pos_(position) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  absl::Status Append(absl::string_view data) override { return fs_->HandleAppend(this, data); }
  absl::Status Sync() override { return fs_->HandleSync(this); }
  absl::Status Preallocate(uint64_t end) override { return fs_->HandleZeroFill(this, end); }
  absl::Status Close() override {
    closed_ = true;
    return absl::OkStatus();
  }

 private:
  friend class FakeFileSystem;
  FakeFileSystem* const fs_;
  const std::shared_ptr<Node> node_;
  const std::string path_;
  const uint64_t epoch_;
  uint64_t pos_;  // where the next Append writes
  bool closed_ = false;
};

void FakeFileSystem::InjectFault(FsOp op, int nth, absl::Status error, bool sticky) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(Fault{op, nth, std::move(error), sticky});
}

void FakeFileSystem::ClearFaults() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
}

void FakeFileSystem::SetFreeBytes(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  free_bytes_ = bytes;
}

void FakeFileSystem::Crash() {
  absl::MutexLock lock(&mu_);
  for (auto& [unused, dir] : dirs_) {
    dir.live = dir.durable;
    for (auto& [name, node] : dir.live) {
      node->data = node->durable;
    }
  }
  ++epoch_;
  trace_.push_back("crash");
}

void FakeFileSystem::CrashLandingSectorsAtRandom(uint32_t seed) {
  absl::MutexLock lock(&mu_);
  uint32_t state = seed * 2654435761u + 1;
  auto coin = [&state] {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return (state & 1) != 0;
  };
  constexpr size_t kSector = 512;
  for (auto& [unused, dir] : dirs_) {
    dir.live = dir.durable;
    for (auto& [name, node] : dir.live) {
      // A sector that did not land keeps its synced bytes (zeros written
      // ahead, say); past the synced size the file ends with the last
      // sector that landed, and those before it that did not read as zeros.
      std::string landed = node->durable;
      const std::string& written = node->data;
      for (size_t p = 0; p < written.size(); p += kSector) {
        const size_t n = std::min(kSector, written.size() - p);
        const bool changed = p + n > landed.size() || landed.compare(p, n, written, p, n) != 0;
        if (!changed || !coin()) continue;
        if (landed.size() < p + n) landed.resize(p + n, '\0');
        landed.replace(p, n, written, p, n);
      }
      node->data = landed;
      node->durable = landed;
    }
  }
  ++epoch_;
  trace_.push_back("crash");
}

void FakeFileSystem::SetSyncHook(std::function<void(const std::string&)> hook) {
  absl::MutexLock lock(&mu_);
  sync_hook_ = std::move(hook);
}

bool FakeFileSystem::Exists(const std::string& path) const {
  absl::ReaderMutexLock lock(&mu_);
  return FindNode(path) != nullptr;
}

std::string FakeFileSystem::Contents(const std::string& path) const {
  absl::ReaderMutexLock lock(&mu_);
  auto node = FindNode(path);
  return node ? node->data : std::string();
}

uint64_t FakeFileSystem::UnsyncedBytes(const std::string& path) const {
  absl::ReaderMutexLock lock(&mu_);
  auto node = FindNode(path);
  if (node == nullptr) return 0;
  const auto differ = std::mismatch(node->data.begin(), node->data.end(), node->durable.begin(),
                                    node->durable.end());
  return node->data.end() - differ.first;
}

void FakeFileSystem::SetContents(const std::string& path, const std::string& data) {
  absl::MutexLock lock(&mu_);
  std::string dir_name, name;
  SplitPath(path, &dir_name, &name);
  auto node = std::make_shared<Node>();
  node->data = data;
  node->durable = data;
  EnsureDir(dir_name);
  Dir& dir = dirs_[dir_name];
  dir.live[name] = node;
  dir.durable[name] = node;
}

FakeFileSystem::Counters FakeFileSystem::counters() const {
  absl::ReaderMutexLock lock(&mu_);
  return counters_;
}

std::vector<std::string> FakeFileSystem::Trace() const {
  absl::ReaderMutexLock lock(&mu_);
  return trace_;
}

void FakeFileSystem::ClearTrace() {
  absl::MutexLock lock(&mu_);
  trace_.clear();
}

absl::Status FakeFileSystem::CheckFault(FsOp op) {
  absl::Status result;
  for (Fault& f : faults_) {
    if (f.op != op && f.op != FsOp::kAny) continue;
    if (f.fired) {
      if (f.sticky && result.ok()) result = f.error;
      continue;
    }
    if (--f.countdown <= 0) {
      f.fired = true;
      if (result.ok()) result = f.error;
    }
  }
  return result;
}

absl::Status FakeFileSystem::Locate(const std::string& path, Dir** dir, std::string* name) {
  std::string dir_name;
  SplitPath(path, &dir_name, name);
  auto it = dirs_.find(dir_name);
  if (it == dirs_.end()) return NotFound("open", path);
  *dir = &it->second;
  return absl::OkStatus();
}

std::shared_ptr<FakeFileSystem::Node> FakeFileSystem::FindNode(const std::string& path) const {
  std::string dir_name, name;
  SplitPath(path, &dir_name, &name);
  auto dir = dirs_.find(dir_name);
  if (dir == dirs_.end()) return nullptr;
  auto entry = dir->second.live.find(name);
  return entry == dir->second.live.end() ? nullptr : entry->second;
}

absl::Status FakeFileSystem::HandleAppend(Handle* h, absl::string_view data) {
  absl::MutexLock lock(&mu_);
  if (h->closed_ || h->epoch_ != epoch_) {
    return absl::FailedPreconditionError(absl::StrCat("write ", h->path_, ": stale handle"));
  }
  if (absl::Status s = CheckFault(FsOp::kWrite); !s.ok()) return s;
  std::string& file = h->node_->data;
  // Only bytes past the end of the file take space; the rest overwrite.
  const uint64_t end = h->pos_ + data.size();
  const uint64_t growth = end > file.size() ? end - file.size() : 0;
  size_t fits = data.size();
  if (growth > free_bytes_) fits = data.size() - static_cast<size_t>(growth - free_bytes_);
  if (file.size() < h->pos_ + fits) file.resize(h->pos_ + fits);
  file.replace(h->pos_, fits, data.data(), fits);
  h->pos_ += fits;
  if (growth > free_bytes_) {
    free_bytes_ = 0;
    return absl::Status(absl::ErrnoToStatusCode(ENOSPC),
                        absl::StrCat("write ", h->path_, ": No space left on device"));
  }
  if (free_bytes_ != std::numeric_limits<uint64_t>::max()) free_bytes_ -= growth;
  ++counters_.writes;
  trace_.push_back(absl::StrCat("write ", h->path_));
  return absl::OkStatus();
}

absl::Status FakeFileSystem::HandleZeroFill(Handle* h, uint64_t end) {
  absl::MutexLock lock(&mu_);
  if (h->closed_ || h->epoch_ != epoch_) {
    return absl::FailedPreconditionError(absl::StrCat("write ", h->path_, ": stale handle"));
  }
  if (absl::Status s = CheckFault(FsOp::kWrite); !s.ok()) return s;
  std::string& file = h->node_->data;
  if (end <= file.size()) return absl::OkStatus();
  const uint64_t growth = end - file.size();
  if (growth > free_bytes_) {
    file.resize(file.size() + free_bytes_, '\0');
    free_bytes_ = 0;
    return absl::Status(absl::ErrnoToStatusCode(ENOSPC),
                        absl::StrCat("write zeros to ", h->path_, ": No space left on device"));
  }
  if (free_bytes_ != std::numeric_limits<uint64_t>::max()) free_bytes_ -= growth;
  file.resize(end, '\0');
  ++counters_.writes;
  trace_.push_back(absl::StrCat("zeros ", h->path_, " ", end));
  return absl::OkStatus();
}

absl::Status FakeFileSystem::HandleSync(Handle* h) {
  std::function<void(const std::string&)> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = sync_hook_;
  }
  if (hook) hook(h->path_);
  absl::MutexLock lock(&mu_);
  if (h->closed_ || h->epoch_ != epoch_) {
    return absl::FailedPreconditionError(absl::StrCat("fdatasync ", h->path_, ": stale handle"));
  }
  if (absl::Status s = CheckFault(FsOp::kSync); !s.ok()) return s;
  h->node_->durable = h->node_->data;
  ++counters_.syncs;
  trace_.push_back(absl::StrCat("sync ", h->path_));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<WritableFile>> FakeFileSystem::NewWritableFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  Dir* dir;
  std::string name;
  if (absl::Status s = Locate(path, &dir, &name); !s.ok()) return s;
  if (absl::Status s = CheckFault(FsOp::kCreate); !s.ok()) return s;
  auto& node = dir->live[name];
  if (node == nullptr) node = std::make_shared<Node>();
  node->data.clear();
  node->durable.clear();
  trace_.push_back(absl::StrCat("create ", path));
  return std::unique_ptr<WritableFile>(new Handle(this, node, path, epoch_, 0));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FakeFileSystem::NewAppendableFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto node = FindNode(path);
  if (node == nullptr) return NotFound("open for append", path);
  if (absl::Status s = CheckFault(FsOp::kCreate); !s.ok()) return s;
  trace_.push_back(absl::StrCat("open ", path));
  return std::unique_ptr<WritableFile>(new Handle(this, node, path, epoch_, node->data.size()));
}

absl::StatusOr<std::unique_ptr<SequentialFile>> FakeFileSystem::NewSequentialFile(
    const std::string& path) {
  // Reads a snapshot: enough for a reader that runs while nobody writes.
  class Reader final : public SequentialFile {
   public:
    explicit Reader(std::string data) : data_(std::move(data)) {}
    absl::Status Read(size_t n, std::string* out) override {
      const size_t take = std::min(n, data_.size() - pos_);
      out->assign(data_, pos_, take);
      pos_ += take;
      return absl::OkStatus();
    }

   private:
    const std::string data_;
    size_t pos_ = 0;
  };
  absl::ReaderMutexLock lock(&mu_);
  auto node = FindNode(path);
  if (node == nullptr) return NotFound("open", path);
  return std::unique_ptr<SequentialFile>(new Reader(node->data));
}

absl::Status FakeFileSystem::ReadFile(const std::string& path, std::string* out) {
  absl::ReaderMutexLock lock(&mu_);
  auto node = FindNode(path);
  if (node == nullptr) return NotFound("open", path);
  *out = node->data;
  return absl::OkStatus();
}

absl::Status FakeFileSystem::Rename(const std::string& from, const std::string& to) {
  absl::MutexLock lock(&mu_);
  Dir *from_dir, *to_dir;
  std::string from_name, to_name;
  if (absl::Status s = Locate(from, &from_dir, &from_name); !s.ok()) return s;
  if (absl::Status s = Locate(to, &to_dir, &to_name); !s.ok()) return s;
  auto it = from_dir->live.find(from_name);
  if (it == from_dir->live.end()) return NotFound("rename", from);
  if (absl::Status s = CheckFault(FsOp::kRename); !s.ok()) return s;
  auto node = it->second;
  from_dir->live.erase(it);
  to_dir->live[to_name] = std::move(node);
  trace_.push_back(absl::StrCat("rename ", from, " ", to));
  return absl::OkStatus();
}

absl::Status FakeFileSystem::SyncDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  auto it = dirs_.find(CleanDir(dir));
  if (it == dirs_.end()) return NotFound("open dir", dir);
  if (absl::Status s = CheckFault(FsOp::kSyncDir); !s.ok()) return s;
  it->second.durable = it->second.live;
  ++counters_.dir_syncs;
  trace_.push_back(absl::StrCat("syncdir ", CleanDir(dir)));
  return absl::OkStatus();
}

absl::Status FakeFileSystem::ListDir(const std::string& dir, std::vector<std::string>* names) {
  absl::ReaderMutexLock lock(&mu_);
  names->clear();
  auto it = dirs_.find(CleanDir(dir));
  if (it == dirs_.end()) return NotFound("opendir", dir);
  for (const auto& [name, unused] : it->second.live) names->push_back(name);
  return absl::OkStatus();
}

absl::Status FakeFileSystem::Remove(const std::string& path) {
  absl::MutexLock lock(&mu_);
  Dir* dir;
  std::string name;
  if (absl::Status s = Locate(path, &dir, &name); !s.ok()) return s;
  if (dir->live.count(name) == 0) return NotFound("unlink", path);
  if (absl::Status s = CheckFault(FsOp::kRemove); !s.ok()) return s;
  dir->live.erase(name);
  trace_.push_back(absl::StrCat("remove ", path));
  return absl::OkStatus();
}

absl::Status FakeFileSystem::Truncate(const std::string& path, uint64_t size) {
  absl::MutexLock lock(&mu_);
  auto node = FindNode(path);
  if (node == nullptr) return NotFound("open for truncate", path);
  if (absl::Status s = CheckFault(FsOp::kTruncate); !s.ok()) return s;
  node->data.resize(size);
  node->durable = node->data;
  trace_.push_back(absl::StrCat("truncate ", path, " ", size));
  return absl::OkStatus();
}

absl::Status FakeFileSystem::CreateDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  EnsureDir(CleanDir(dir));
  return absl::OkStatus();
}

void FakeFileSystem::EnsureDir(const std::string& dir) {
  // Like mkdir -p, so that SyncDir of a parent directory works in tests.
  for (size_t slash = dir.find('/', 1); slash != std::string::npos;
       slash = dir.find('/', slash + 1)) {
    dirs_.try_emplace(dir.substr(0, slash));
  }
  if (dir.front() == '/') dirs_.try_emplace("/");
  dirs_.try_emplace(dir);
}

absl::StatusOr<uint64_t> FakeFileSystem::FileSize(const std::string& path) {
  absl::ReaderMutexLock lock(&mu_);
  auto node = FindNode(path);
  if (node == nullptr) return NotFound("stat", path);
  return static_cast<uint64_t>(node->data.size());
}

}  // namespace txcoord::wal
