// Helpers shared by the WAL's unit tests: a log on a FakeFileSystem, what
// Open replayed, and byte surgery on segment files. Test-only.
#ifndef TXCOORD_COORDINATOR_WAL_LOG_TEST_UTIL_H_
#define TXCOORD_COORDINATOR_WAL_LOG_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log.h"
#include "coordinator/wal/log_format.h"

namespace txcoord::wal::testing {

inline constexpr char kDir[] = "/data/wal";
inline constexpr uint8_t kType = 7;

inline LogOptions FakeOptions(FakeFileSystem* fs) {
  LogOptions options;
  options.dir = kDir;
  options.fs = fs;
  return options;
}

inline std::string SegmentPath(uint64_t sequence) {
  return absl::StrCat(kDir, "/", SegmentFileName(sequence));
}

// A log and the payloads Open replayed into it.
struct Opened {
  absl::StatusOr<std::unique_ptr<Log>> log;
  std::vector<std::string> replayed;
};

inline Opened OpenLog(const LogOptions& options) {
  Opened opened;
  opened.log = Log::Open(options, [&](const Record& r) { opened.replayed.push_back(r.payload); });
  return opened;
}

// "record-<i>" padded with 'x' to a length that varies with i, so records
// end at many different offsets.
inline std::string Payload(int i) {
  return absl::StrCat("record-", i, std::string(static_cast<size_t>(i % 23), 'x'));
}

inline std::vector<std::string> Payloads(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(Payload(i));
  return out;
}

// Writes `n` synced records through a fresh log in `fs` and closes it.
// Returns the offset at which each record starts in segment 1.
inline std::vector<uint64_t> WriteRecords(FakeFileSystem* fs, int n) {
  std::vector<uint64_t> offsets;
  Opened opened = OpenLog(FakeOptions(fs));
  if (!opened.log.ok()) return {};
  uint64_t offset = kSegmentHeaderBytes;
  for (int i = 0; i < n; ++i) {
    offsets.push_back(offset);
    offset += kRecordHeaderBytes + Payload(i).size();
    if (!(*opened.log)->AppendSync(kType, Payload(i)).ok()) return {};
  }
  return offsets;
}

// Holds the writer (or whoever syncs) inside the first fdatasync until released, so a test can
// pile appends up behind it: the deterministic way to build a batch.
class FirstSyncGate {
 public:
  explicit FirstSyncGate(FakeFileSystem* fs) : fs_(fs) {
    fs->SetSyncHook([this](const std::string&) {
      if (entered_.HasBeenNotified()) return;
      entered_.Notify();
      released_.WaitForNotification();
    });
  }
  ~FirstSyncGate() { fs_->SetSyncHook(nullptr); }
  void WaitUntilWriterIsInside() { entered_.WaitForNotification(); }
  void Release() { released_.Notify(); }

 private:
  FakeFileSystem* const fs_;
  absl::Notification entered_;
  absl::Notification released_;
};

}  // namespace txcoord::wal::testing

#endif  // TXCOORD_COORDINATOR_WAL_LOG_TEST_UTIL_H_
