#include "sim/sim_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "absl/strings/match.h"

namespace txcoord::sim {
namespace {

// What SQLite allocates per open file (szOsFile): plain data, so that
// SQLite may treat it as raw memory; the C++ state lives behind `impl`.
struct Handle {
  sqlite3_file base;
  struct Impl* impl;
};

struct Impl {
  SimVfs* vfs;
  std::string path;  // empty for an anonymous temp file
  SimVfs::DirState* dir;
  uint64_t generation;
  bool delete_on_close;
  std::shared_ptr<SimVfs::File> file;
  // The WAL index lives in ordinary memory, one per connection: it is not
  // durable, so a restarted participant rebuilds it from the WAL file as
  // SQLite does after a real crash.
  std::vector<std::unique_ptr<char[]>> shm;
};

SimVfs* g_vfs = nullptr;
sqlite3_vfs* g_fallback = nullptr;  // the platform VFS, for dlopen only
sqlite3_vfs g_sqlite_vfs;
sqlite3_io_methods g_io;

Impl* ImplOf(sqlite3_file* f) { return reinterpret_cast<Handle*>(f)->impl; }

void Apply(const SimVfs::Op& op, std::string* data) {
  if (op.truncate) {
    data->resize(op.offset);
    return;
  }
  if (data->size() < op.offset + op.bytes.size()) data->resize(op.offset + op.bytes.size());
  std::memcpy(data->data() + op.offset, op.bytes.data(), op.bytes.size());
}

// A handle of a process that Freeze declared dead must not touch the disk.
bool Alive(const Impl* impl) {
  return impl->dir->generation == impl->generation && !impl->dir->frozen;
}

int Close(sqlite3_file* f) {
  Impl* impl = ImplOf(f);
  {
    absl::MutexLock lock(&impl->vfs->mu);
    if (impl->delete_on_close && !impl->path.empty() && Alive(impl)) {
      impl->vfs->files.erase(impl->path);
    }
  }
  delete impl;
  return SQLITE_OK;
}

int Read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
  Impl* impl = ImplOf(f);
  absl::MutexLock lock(&impl->vfs->mu);
  if (!Alive(impl)) return SQLITE_IOERR_READ;
  const std::string& data = impl->file->data;
  const uint64_t off = static_cast<uint64_t>(offset);
  const size_t have = off >= data.size() ? 0 : std::min<size_t>(amount, data.size() - off);
  if (have > 0) std::memcpy(out, data.data() + off, have);
  if (have < static_cast<size_t>(amount)) {
    std::memset(static_cast<char*>(out) + have, 0, amount - have);
    return SQLITE_IOERR_SHORT_READ;
  }
  return SQLITE_OK;
}

int Write(sqlite3_file* f, const void* in, int amount, sqlite3_int64 offset) {
  Impl* impl = ImplOf(f);
  absl::MutexLock lock(&impl->vfs->mu);
  if (!Alive(impl)) return SQLITE_IOERR_WRITE;
  SimVfs::Op op{false, static_cast<uint64_t>(offset),
                std::string(static_cast<const char*>(in), amount)};
  Apply(op, &impl->file->data);
  impl->file->pending.push_back(std::move(op));
  return SQLITE_OK;
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  Impl* impl = ImplOf(f);
  absl::MutexLock lock(&impl->vfs->mu);
  if (!Alive(impl)) return SQLITE_IOERR_TRUNCATE;
  SimVfs::Op op{true, static_cast<uint64_t>(size), ""};
  Apply(op, &impl->file->data);
  impl->file->pending.push_back(std::move(op));
  return SQLITE_OK;
}

int Sync(sqlite3_file* f, int flags) {
  Impl* impl = ImplOf(f);
  std::function<void(const std::string&)> hook;
  {
    absl::MutexLock lock(&impl->vfs->mu);
    hook = impl->vfs->sync_hook;
  }
  if (hook) hook(impl->path);
  absl::MutexLock lock(&impl->vfs->mu);
  if (!Alive(impl)) return SQLITE_IOERR_FSYNC;
  SimVfs::File& file = *impl->file;
  for (const SimVfs::Op& op : file.lagged) Apply(op, &file.durable);
  file.lagged.clear();
  // Only SQLite's WAL file lags: that is where a commit (a prepare) lives
  // until a checkpoint; the database file stays honest, so the bug loses
  // recent commits and nothing older.
  if (impl->dir->lagging_sync && absl::EndsWith(impl->path, "-wal")) {
    file.lagged = std::move(file.pending);
  } else {
    for (const SimVfs::Op& op : file.pending) Apply(op, &file.durable);
  }
  file.pending.clear();
  return SQLITE_OK;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  Impl* impl = ImplOf(f);
  absl::MutexLock lock(&impl->vfs->mu);
  if (!Alive(impl)) return SQLITE_IOERR_FSTAT;
  *size = static_cast<sqlite3_int64>(impl->file->data.size());
  return SQLITE_OK;
}

// One connection per database at a time: every lock is granted.
int Lock(sqlite3_file*, int) { return SQLITE_OK; }
int Unlock(sqlite3_file*, int) { return SQLITE_OK; }
int CheckReservedLock(sqlite3_file*, int* out) {
  *out = 0;
  return SQLITE_OK;
}
int FileControl(sqlite3_file*, int, void*) { return SQLITE_NOTFOUND; }
int SectorSize(sqlite3_file*) { return 4096; }
// No atomic or power-safe writes are promised: SQLite takes the careful path.
int DeviceCharacteristics(sqlite3_file*) { return 0; }

int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  Impl* impl = ImplOf(f);
  if (static_cast<size_t>(region) >= impl->shm.size()) {
    if (!extend) {
      *out = nullptr;
      return SQLITE_OK;
    }
    while (impl->shm.size() <= static_cast<size_t>(region)) {
      impl->shm.push_back(std::make_unique<char[]>(size));
      std::memset(impl->shm.back().get(), 0, size);
    }
  }
  *out = impl->shm[region].get();
  return SQLITE_OK;
}
int ShmLock(sqlite3_file*, int, int, int) { return SQLITE_OK; }
void ShmBarrier(sqlite3_file*) {}
int ShmUnmap(sqlite3_file* f, int) {
  ImplOf(f)->shm.clear();
  return SQLITE_OK;
}

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  SimVfs* sim = static_cast<SimVfs*>(vfs->pAppData);
  f->pMethods = nullptr;
  auto impl = std::make_unique<Impl>();
  impl->vfs = sim;
  impl->path = name == nullptr ? "" : name;
  impl->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
  {
    absl::MutexLock lock(&sim->mu);
    SimVfs::DirState& dir = sim->dirs[DirOf(impl->path)];
    if (dir.frozen) return SQLITE_CANTOPEN;
    impl->dir = &dir;
    impl->generation = dir.generation;
    if (impl->path.empty()) {
      impl->file = std::make_shared<SimVfs::File>();
    } else {
      auto it = sim->files.find(impl->path);
      if (it == sim->files.end()) {
        if ((flags & SQLITE_OPEN_CREATE) == 0) return SQLITE_CANTOPEN;
        it = sim->files.emplace(impl->path, std::make_shared<SimVfs::File>()).first;
      }
      impl->file = it->second;
    }
  }
  if (out_flags != nullptr) *out_flags = flags;
  reinterpret_cast<Handle*>(f)->impl = impl.release();
  f->pMethods = &g_io;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs* vfs, const char* name, int) {
  SimVfs* sim = static_cast<SimVfs*>(vfs->pAppData);
  absl::MutexLock lock(&sim->mu);
  if (sim->dirs[DirOf(name)].frozen) return SQLITE_IOERR_DELETE;
  return sim->files.erase(name) > 0 ? SQLITE_OK : SQLITE_IOERR_DELETE_NOENT;
}

int Access(sqlite3_vfs* vfs, const char* name, int, int* out) {
  SimVfs* sim = static_cast<SimVfs*>(vfs->pAppData);
  absl::MutexLock lock(&sim->mu);
  auto it = sim->files.find(name);
  // As the unix VFS: an empty file does not count as existing.
  *out = it != sim->files.end() && !it->second->data.empty();
  return SQLITE_OK;
}

int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  sqlite3_snprintf(n, out, "%s", name);
  return SQLITE_OK;
}

void* DlOpen(sqlite3_vfs*, const char* name) { return g_fallback->xDlOpen(g_fallback, name); }
void DlError(sqlite3_vfs*, int n, char* out) { g_fallback->xDlError(g_fallback, n, out); }
void (*DlSym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return g_fallback->xDlSym(g_fallback, h, sym);
}
void DlClose(sqlite3_vfs*, void* h) { g_fallback->xDlClose(g_fallback, h); }

// Deterministic: a run must not depend on the machine's entropy.
int Randomness(sqlite3_vfs*, int n, char* out) {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    out[i] = static_cast<char>(x >> 56);
  }
  return n;
}
// Nothing may block the simulator's only thread.
int Sleep(sqlite3_vfs*, int micros) { return micros; }
int CurrentTime(sqlite3_vfs*, double* out) {
  *out = 2460000.5;  // a fixed Julian day
  return SQLITE_OK;
}
int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  *out = static_cast<sqlite3_int64>(2460000.5 * 86400000.0);
  return SQLITE_OK;
}
int GetLastError(sqlite3_vfs*, int, char*) { return 0; }

}  // namespace

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

SimVfs& SimVfs::Install() {
  static SimVfs* const vfs = [] {
    auto* sim = new SimVfs();
    g_vfs = sim;
    g_fallback = sqlite3_vfs_find(nullptr);
    g_io = {};
    g_io.iVersion = 2;
    g_io.xClose = Close;
    g_io.xRead = Read;
    g_io.xWrite = Write;
    g_io.xTruncate = Truncate;
    g_io.xSync = Sync;
    g_io.xFileSize = FileSize;
    g_io.xLock = Lock;
    g_io.xUnlock = Unlock;
    g_io.xCheckReservedLock = CheckReservedLock;
    g_io.xFileControl = FileControl;
    g_io.xSectorSize = SectorSize;
    g_io.xDeviceCharacteristics = DeviceCharacteristics;
    g_io.xShmMap = ShmMap;
    g_io.xShmLock = ShmLock;
    g_io.xShmBarrier = ShmBarrier;
    g_io.xShmUnmap = ShmUnmap;
    g_sqlite_vfs = {};
    g_sqlite_vfs.iVersion = 2;
    g_sqlite_vfs.szOsFile = sizeof(Handle);
    g_sqlite_vfs.mxPathname = 512;
    g_sqlite_vfs.zName = "txsim";
    g_sqlite_vfs.pAppData = sim;
    g_sqlite_vfs.xOpen = Open;
    g_sqlite_vfs.xDelete = Delete;
    g_sqlite_vfs.xAccess = Access;
    g_sqlite_vfs.xFullPathname = FullPathname;
    g_sqlite_vfs.xDlOpen = DlOpen;
    g_sqlite_vfs.xDlError = DlError;
    g_sqlite_vfs.xDlSym = DlSym;
    g_sqlite_vfs.xDlClose = DlClose;
    g_sqlite_vfs.xRandomness = Randomness;
    g_sqlite_vfs.xSleep = Sleep;
    g_sqlite_vfs.xCurrentTime = CurrentTime;
    g_sqlite_vfs.xGetLastError = GetLastError;
    g_sqlite_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    sqlite3_vfs_register(&g_sqlite_vfs, /*makeDflt=*/1);
    return sim;
  }();
  return *vfs;
}

void SimVfs::Freeze(const std::string& dir) {
  absl::MutexLock lock(&mu);
  DirState& state = dirs[dir];
  ++state.generation;
  state.frozen = true;
}

void SimVfs::Crash(const std::string& dir, std::mt19937_64& rng) {
  absl::MutexLock lock(&mu);
  for (auto& [path, file] : files) {
    if (DirOf(path) != dir) continue;
    std::vector<Op> ops = std::move(file->lagged);
    for (Op& op : file->pending) ops.push_back(std::move(op));
    // A disk writes back in order here; which prefix made it is luck.
    const size_t kept = std::uniform_int_distribution<size_t>(0, ops.size())(rng);
    for (size_t i = 0; i < kept; ++i) Apply(ops[i], &file->durable);
    file->data = file->durable;
    file->lagged.clear();
    file->pending.clear();
  }
  dirs[dir].frozen = false;
}

void SimVfs::Thaw(const std::string& dir) {
  absl::MutexLock lock(&mu);
  dirs[dir].frozen = false;
}

void SimVfs::SetSyncHook(std::function<void(const std::string& path)> hook) {
  absl::MutexLock lock(&mu);
  sync_hook = std::move(hook);
}

void SimVfs::SetLaggingSync(const std::string& dir, bool lagging) {
  absl::MutexLock lock(&mu);
  dirs[dir].lagging_sync = lagging;
}

void SimVfs::RemoveAll(const std::string& dir) {
  absl::MutexLock lock(&mu);
  for (auto it = files.begin(); it != files.end();) {
    const std::string d = DirOf(it->first);
    if (d == dir || d.rfind(dir + "/", 0) == 0) {
      it = files.erase(it);
    } else {
      ++it;
    }
  }
}

bool SimVfs::Exists(const std::string& path) {
  absl::MutexLock lock(&mu);
  return files.count(path) > 0;
}

std::string SimVfs::Contents(const std::string& path) {
  absl::MutexLock lock(&mu);
  auto it = files.find(path);
  return it == files.end() ? "" : it->second->data;
}

}  // namespace txcoord::sim
