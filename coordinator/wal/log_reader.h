// Reading a WAL directory without changing it: which segments are live, what
// each holds, and whether a bad byte is a torn tail (cut on Open) or
// corruption (Open refuses). Log::Open and `txctl wal check|dump` share this
// code, so the offline verdict and its message are exactly what Open does.
//
//   std::vector<wal::SegmentReport> report;
//   absl::Status s = wal::CheckLog("/var/lib/txcoord/wal", fs, &report,
//       [](const wal::RecordInfo& r) { print(r.file, r.offset, r.type); });
#ifndef TXCOORD_COORDINATOR_WAL_LOG_READER_H_
#define TXCOORD_COORDINATOR_WAL_LOG_READER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "coordinator/wal/file_system.h"
#include "coordinator/wal/log_format.h"

namespace txcoord::wal {

// One good record inside a segment's bytes.
struct RecordView {
  uint64_t offset = 0;  // of the record header in the file
  uint8_t type = 0;
  absl::string_view payload;
};

// What one segment file holds, judged on its own.
struct SegmentScan {
  enum class State {
    kClean,     // header and every record good, up to the end of the file
    kZeroTail,  // good records, then only zeros: written ahead of the appends
                // (LogOptions.preallocate_bytes), or a file extended by a
                // crash before any byte of the batch landed; no record there
    kTorn,      // good records, then bytes that look like an interrupted write
    kCorrupt,   // a bad header, or a bad record that a torn write cannot explain
  };
  State state = State::kClean;
  absl::Status header_status;  // !ok: the header is bad; nothing else is known
  SegmentHeader header;
  uint64_t records = 0;     // good records before the first bad byte
  uint64_t good_bytes = 0;  // end of the last good record: where a repair cuts
  uint64_t file_bytes = 0;
  uint64_t problem_offset = 0;  // first bad byte (state != kClean)
  std::string problem;          // why it is bad, e.g. "checksum mismatch"
};

// Parses a whole segment file held in memory. Calls `visit` (may be empty)
// for every good record in order, up to the first bad one. A bad record is
// corruption, not a torn tail, when it lies inside the segment's checkpoint or
// a valid record follows it where no torn write could have put one: past the
// extent its header claims (anywhere, when the length is over the limit), or
// where its checksum says it ends (a damaged length field). A valid frame
// inside the claimed extent, or anywhere after a length that runs past the end
// of the file, proves nothing: a torn record's payload may hold one. Nor
// does one after the zeros of a lost sector (up to a 512-byte boundary)
// within the last MiB written: an unsynced write whose sectors landed out
// of order, as writes over zeros written ahead (LogOptions.
// preallocate_bytes) may.
SegmentScan ScanSegment(absl::string_view data,
                        const std::function<void(const RecordView&)>& visit);

// What of a torn tail (the bytes from SegmentScan::good_bytes on) a repair
// keeps in its .broken copy: the torn record as far as its header claims,
// and every byte up to the last that is not zero; not the zeros after that,
// space written ahead of the appends (up to preallocate_bytes of it).
absl::string_view TornBytesWorthKeeping(absl::string_view tail);

// Open's rule applied to one scan: OK when clean, or torn or ending in zeros
// and `is_last` (none are written past the size at which a segment rotates);
// otherwise DATA_LOSS "corrupt record in <path> at offset <n>: <why>".
ABSL_MUST_USE_RESULT absl::Status SegmentVerdict(const std::string& path, const SegmentScan& scan,
                                                 bool is_last);

struct SegmentFile {
  uint64_t sequence = 0;
  std::string name;  // inside the log directory
  std::string path;
};

// Which files of a log directory matter, from names and segment headers.
struct LogPlan {
  // Oldest first: the newest segment with kFlagBase and all after it.
  // Appends continue in live.back().
  std::vector<SegmentFile> live;
  // Segments older than the newest base: superseded by its checkpoint, left
  // over when a crash cut a rotation short. Open deletes them unread.
  std::vector<SegmentFile> obsolete;
  // "<segment>.wal.tmp": segments whose creation never finished.
  std::vector<std::string> tmp_files;
};

// Lists `dir` and reads segment headers from the newest back to the newest
// base. DATA_LOSS when a header is bad, names the wrong sequence, or a live
// segment is missing (a gap, or no base at all).
ABSL_MUST_USE_RESULT absl::Status PlanLog(const std::string& dir, FileSystem* fs, LogPlan* plan);

// One record for an offline dump.
struct RecordInfo {
  const std::string& file;  // segment name
  uint64_t offset;
  uint8_t type;
  absl::string_view payload;
};

struct SegmentReport {
  std::string file;
  uint64_t sequence = 0;
  uint64_t bytes = 0;
  bool live = true;  // false: obsolete, Open would delete it without reading
  bool base = false;
  uint64_t checkpoint_bytes = 0;
  uint64_t records = 0;
  uint64_t good_bytes = 0;
  // The tail from good_bytes is a torn write that Open would cut (logged,
  // with a .broken copy). Only ever true for the last segment.
  bool torn_tail = false;
  // Zeros after the last record of the last segment (good_bytes on): space
  // written ahead of the appends. Open cuts it without a copy or a warning
  // and writes it again.
  uint64_t zero_tail_bytes = 0;
  std::string tail_problem;
  absl::Status status;  // the segment's verdict, as Open would report it
};

// Checks a log directory the way Open would, changing nothing: returns OK
// when Open would succeed (perhaps cutting a torn tail) and otherwise Open's
// error. Fills `report` (may be null) with one entry per segment file, oldest
// first, and calls `visit` (may be empty) for every good record of every
// live segment in log order. Safe to run while no Log has the dir open.
ABSL_MUST_USE_RESULT absl::Status CheckLog(
    const std::string& dir, FileSystem* fs, std::vector<SegmentReport>* report,
    const std::function<void(const RecordInfo&)>& visit = {});

}  // namespace txcoord::wal

#endif  // TXCOORD_COORDINATOR_WAL_LOG_READER_H_
