#include "coordinator/wal/log_reader.h"

#include <algorithm>
#include <cstddef>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/wal/crc32c.h"
#include "coordinator/wal/log.h"

namespace txcoord::wal {
namespace {

uint32_t LoadLE32(const char* p) {
  return static_cast<uint32_t>(static_cast<uint8_t>(p[0])) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 8) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(p[3])) << 24);
}

bool AllZero(absl::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// Returns the size of the valid record at `off`, or 0 and why it is not one.
size_t FrameAt(absl::string_view data, size_t off, RecordView* record, std::string* why) {
  const absl::string_view rest = data.substr(off);
  if (AllZero(rest)) {
    // A file system may extend a file before the data lands (etcd's habit
    // of telling torn writes by zero-filled sectors).
    *why = absl::StrCat("trailing zeros (", rest.size(), " bytes)");
    return 0;
  }
  if (rest.size() < kRecordHeaderBytes) {
    *why =
        absl::StrCat("short record header (", rest.size(), " of ", kRecordHeaderBytes, " bytes)");
    return 0;
  }
  const uint32_t length = LoadLE32(rest.data() + 4);
  const uint8_t type = static_cast<uint8_t>(rest[8]);
  if (length > kMaxPayloadBytes) {
    *why = absl::StrCat("bad record length ", length);
    return 0;
  }
  if (rest.size() - kRecordHeaderBytes < length) {
    *why = absl::StrCat("short payload (", rest.size() - kRecordHeaderBytes, " of ", length,
                        " bytes)");
    return 0;
  }
  const uint32_t expected = crc32c::Unmask(LoadLE32(rest.data()));
  if (crc32c::Extend(0, rest.data() + 4, kRecordHeaderBytes - 4 + length) != expected) {
    *why = "checksum mismatch";
    return 0;
  }
  if (type < kMinUserType || type > kMaxUserType) {
    *why = absl::StrCat("bad record type ", type);
    return 0;
  }
  record->offset = off;
  record->type = type;
  record->payload = rest.substr(kRecordHeaderBytes, length);
  return kRecordHeaderBytes + length;
}

// The first offset in [from, limit) where a whole valid record starts, or 0
// (never a record offset: the segment header is there).
// Cheap checks first: in a torn tail (zeros, or half a frame) the length or
// type test fails at almost every offset before any CRC is computed.
size_t FindValidRecord(absl::string_view data, size_t from, size_t limit) {
  for (size_t p = from; p < limit && p + kRecordHeaderBytes <= data.size(); ++p) {
    const uint32_t length = LoadLE32(data.data() + p + 4);
    const uint8_t type = static_cast<uint8_t>(data[p + 8]);
    if (length > kMaxPayloadBytes || type < kMinUserType || type > kMaxUserType) continue;
    if (data.size() - p - kRecordHeaderBytes < length) continue;
    const uint32_t expected = crc32c::Unmask(LoadLE32(data.data() + p));
    if (crc32c::Extend(0, data.data() + p + 4, kRecordHeaderBytes - 4 + length) == expected) {
      return p;
    }
  }
  return 0;
}

// True when the record at `off` is whole and valid once its length field reads
// `length`: then only the length field was damaged. Precondition: the record
// with that length fits in `data`.
bool ChecksumMatchesLength(absl::string_view data, size_t off, uint32_t length) {
  char header[kRecordHeaderBytes - 4];
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>(length >> (8 * i));
  header[4] = data[off + 8];
  const uint32_t crc = crc32c::Extend(crc32c::Extend(0, header, sizeof(header)),
                                      data.data() + off + kRecordHeaderBytes, length);
  return crc == crc32c::Unmask(LoadLE32(data.data() + off));
}

// A valid record after a bad one, and what it shows.
struct Evidence {
  size_t next = 0;  // where the valid record starts; 0: none that counts
  std::string why;
};

// Why the bad record at `off` cannot be a torn write (next == 0 when it can
// be). An appending write that a crash cuts leaves a prefix of the last batch
// and then zeros or nothing, so a torn record's header is as written, and
// every byte up to the end of the extent it claims may be its own payload:
// client bytes, which may hold whole valid frames. A valid record therefore
// proves corruption only where the torn record could not reach: past its
// claimed extent; anywhere, when the length is one no writer wrote; or where
// the record's own checksum says it ends (a damaged length field, with the
// rest of the record intact). ScanSegment then checks for an unsynced write
// that landed out of order (LostSectorBetween).
Evidence CorruptionEvidence(absl::string_view data, size_t off) {
  if (data.size() - off < kRecordHeaderBytes) return {};  // nothing can follow
  const uint32_t length = LoadLE32(data.data() + off + 4);
  if (length > kMaxPayloadBytes) {
    // Zeros only shrink a length, so this header is damaged and the extent
    // it claims means nothing.
    if (const size_t next = FindValidRecord(data, off + 1, data.size()); next != 0) {
      return {next, absl::StrCat("a valid record follows at offset ", next)};
    }
    return {};
  }
  const size_t end = off + kRecordHeaderBytes + length;
  if (end <= data.size()) {
    if (const size_t next = FindValidRecord(data, end, data.size()); next != 0) {
      return {next, absl::StrCat("a valid record follows at offset ", next)};
    }
  }
  // Within the claimed extent (all of the rest of the file, when the extent
  // runs past its end) a valid frame counts only where the checksum agrees.
  const size_t limit = std::min(end, data.size());
  for (size_t p = FindValidRecord(data, off + kRecordHeaderBytes, limit); p != 0;
       p = FindValidRecord(data, p + 1, limit)) {
    const auto true_length = static_cast<uint32_t>(p - off - kRecordHeaderBytes);
    if (ChecksumMatchesLength(data, off, true_length)) {
      return {p, absl::StrCat("a valid record follows at offset ", p,
                              ", where the checksum says this record ends: its length field "
                              "reads ",
                              length, " but the checksum matches ", true_length)};
    }
  }
  return {};
}

// Whether the record at `off` is whole once its first `lost` bytes (1 to 3,
// read as zeros) are taken to be the start of its masked CRC: the rest of
// the CRC, the length, the type and the payload as they are agree.
bool WholeButItsFirstBytes(absl::string_view data, size_t off, size_t lost) {
  if (data.size() - off < kRecordHeaderBytes) return false;
  const uint32_t length = LoadLE32(data.data() + off + 4);
  if (length > kMaxPayloadBytes || data.size() - off - kRecordHeaderBytes < length) return false;
  const uint32_t masked =
      crc32c::Mask(crc32c::Extend(0, data.data() + off + 4, kRecordHeaderBytes - 4 + length));
  for (size_t i = lost; i < 4; ++i) {
    if (static_cast<uint8_t>(data[off + i]) != static_cast<uint8_t>(masked >> (8 * i))) {
      return false;
    }
  }
  return true;
}

// Where the bad record at `from` shows a sector lost by a crash before the
// valid record at `to`, or 0. Writes over zeros already on disk
// (LogOptions.preallocate_bytes), and on some file systems appends too,
// have no order to land in: a crash may keep a later sector of an unsynced
// batch and lose an earlier one, whose bytes past the last sync then read
// as the zeros they were. Nothing after such a hole was synced (a sync of
// it would have made the hole durable too). A lost sector shows as zeros
// from the bad record to the next 512-byte boundary (the sector the last
// sync ended in): at least a masked CRC's 4 bytes, or fewer when the rest
// of the record proves them its CRC's first bytes; or as a whole aligned
// sector of zeros after that boundary.
constexpr size_t kSectorBytes = 512;
size_t LostSectorBetween(absl::string_view data, size_t from, size_t to) {
  const size_t boundary = (from / kSectorBytes + 1) * kSectorBytes;
  const size_t gap = boundary - from;
  if (boundary <= to && AllZero(data.substr(from, gap)) &&
      (gap >= 4 || WholeButItsFirstBytes(data, from, gap))) {
    return from;
  }
  for (size_t p = boundary; p + kSectorBytes <= to; p += kSectorBytes) {
    if (AllZero(data.substr(p, kSectorBytes))) return p;
  }
  return 0;
}

// How far before the last byte that is not zero a lost sector may lie and
// still count as a torn write: what a crash leaves unsynced is the batch
// being written and the records appended without sync since the last
// synced one, never megabytes in practice. Further back, a hole is damage
// to records that were synced, and Open refuses as for any corruption.
constexpr size_t kMaxUnsyncedBytes = 1 << 20;

absl::Status HeaderError(const std::string& path, const absl::Status& s) {
  if (absl::IsDataLoss(s)) {
    return absl::DataLossError(
        absl::StrCat("corrupt segment header in ", path, " at offset 0: ", s.message()));
  }
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

}  // namespace

SegmentScan ScanSegment(absl::string_view data,
                        const std::function<void(const RecordView&)>& visit) {
  SegmentScan scan;
  scan.file_bytes = data.size();
  scan.header_status = ParseSegmentHeader(data, &scan.header);
  if (!scan.header_status.ok()) {
    scan.state = SegmentScan::State::kCorrupt;
    scan.problem = std::string(scan.header_status.message());
    return scan;
  }
  size_t off = kSegmentHeaderBytes;
  std::string why;
  while (off < data.size()) {
    RecordView record;
    const size_t n = FrameAt(data, off, &record, &why);
    if (n == 0) break;
    if (visit) visit(record);
    ++scan.records;
    off += n;
  }
  scan.good_bytes = off;
  const uint64_t checkpoint_end = kSegmentHeaderBytes + scan.header.checkpoint_bytes;
  if (off == data.size()) {
    if (off < checkpoint_end) {
      scan.state = SegmentScan::State::kCorrupt;
      scan.problem_offset = off;
      scan.problem = absl::StrCat("file ends inside the checkpoint, which is ", checkpoint_end,
                                  " bytes long and was synced before the segment was named");
    }
    return scan;
  }
  scan.problem_offset = off;
  scan.problem = why;
  if (off >= checkpoint_end && AllZero(data.substr(off))) {
    scan.state = SegmentScan::State::kZeroTail;
    return scan;
  }
  const Evidence evidence = CorruptionEvidence(data, off);
  const size_t hole = evidence.next != 0 ? LostSectorBetween(data, off, evidence.next) : 0;
  const size_t last_written = data.find_last_not_of('\0');
  if (evidence.next != 0 && hole != 0 && off >= checkpoint_end &&
      last_written - hole < kMaxUnsyncedBytes) {
    // An unsynced write that landed out of order: torn, and the records
    // after the hole go with it (the .broken copy keeps them).
    scan.state = SegmentScan::State::kTorn;
    absl::StrAppend(&scan.problem, " (zeros of a lost sector at offset ", hole,
                    " before a record at offset ", evidence.next,
                    ": an unsynced write that landed out of order)");
  } else if (evidence.next != 0) {
    scan.state = SegmentScan::State::kCorrupt;
    absl::StrAppend(&scan.problem, " (", evidence.why, ")");
  } else if (off < checkpoint_end) {
    scan.state = SegmentScan::State::kCorrupt;
    absl::StrAppend(&scan.problem, " (inside the checkpoint, synced before the segment was named)");
  } else {
    scan.state = SegmentScan::State::kTorn;
  }
  return scan;
}

absl::string_view TornBytesWorthKeeping(absl::string_view tail) {
  size_t keep = std::min(tail.size(), kRecordHeaderBytes);
  if (tail.size() >= kRecordHeaderBytes) {
    const uint32_t length = LoadLE32(tail.data() + 4);
    if (length <= kMaxPayloadBytes) keep = std::min(tail.size(), kRecordHeaderBytes + length);
  }
  const size_t last = tail.find_last_not_of('\0');
  if (last != absl::string_view::npos) keep = std::max(keep, last + 1);
  return tail.substr(0, keep);
}

absl::Status SegmentVerdict(const std::string& path, const SegmentScan& scan, bool is_last) {
  if (!scan.header_status.ok()) return HeaderError(path, scan.header_status);
  switch (scan.state) {
    case SegmentScan::State::kClean:
      return absl::OkStatus();
    case SegmentScan::State::kTorn:
      if (is_last) return absl::OkStatus();
      return absl::DataLossError(absl::StrCat("corrupt record in ", path, " at offset ",
                                              scan.problem_offset, ": ", scan.problem,
                                              " (only the last segment may end in a torn write)"));
    case SegmentScan::State::kZeroTail:
      if (is_last) return absl::OkStatus();
      return absl::DataLossError(absl::StrCat("corrupt record in ", path, " at offset ",
                                              scan.problem_offset, ": ", scan.problem,
                                              " (only the last segment may end in zeros: none are ",
                                              "written past the size at which a segment rotates)"));
    case SegmentScan::State::kCorrupt:
      break;
  }
  return absl::DataLossError(absl::StrCat("corrupt record in ", path, " at offset ",
                                          scan.problem_offset, ": ", scan.problem));
}

absl::Status PlanLog(const std::string& dir, FileSystem* fs, LogPlan* plan) {
  *plan = LogPlan();
  std::vector<std::string> names;
  if (absl::Status s = fs->ListDir(dir, &names); !s.ok()) return s;
  std::vector<SegmentFile> segments;
  for (const std::string& name : names) {
    uint64_t sequence;
    if (ParseSegmentFileName(name, &sequence)) {
      segments.push_back(SegmentFile{sequence, name, JoinPath(dir, name)});
    } else if (absl::EndsWith(name, kTmpSuffix) &&
               ParseSegmentFileName(name.substr(0, name.size() - kTmpSuffix.size()), &sequence)) {
      plan->tmp_files.push_back(JoinPath(dir, name));
    }
  }
  if (segments.empty()) return absl::OkStatus();
  std::sort(segments.begin(), segments.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.sequence < b.sequence; });

  // Walk back from the newest segment to the newest base; older segments are
  // not needed and need not even be readable.
  size_t base = segments.size();
  for (size_t i = segments.size(); i-- > 0;) {
    const SegmentFile& segment = segments[i];
    if (i + 1 < segments.size() && segment.sequence + 1 != segments[i + 1].sequence) {
      return absl::DataLossError(absl::StrCat("segment ", SegmentFileName(segment.sequence + 1),
                                              " is missing from ", dir, " (between ", segment.name,
                                              " and ", segments[i + 1].name, ")"));
    }
    std::string head;
    auto file = fs->NewSequentialFile(segment.path);
    if (!file.ok()) return file.status();
    if (absl::Status s = (*file)->Read(kSegmentHeaderBytes, &head); !s.ok()) return s;
    SegmentHeader header;
    if (absl::Status s = ParseSegmentHeader(head, &header); !s.ok()) {
      return HeaderError(segment.path, s);
    }
    if (header.sequence != segment.sequence) {
      return absl::DataLossError(absl::StrCat("corrupt segment header in ", segment.path,
                                              " at offset 0: it names sequence ", header.sequence));
    }
    if (header.flags & kFlagBase) {
      base = i;
      break;
    }
  }
  if (base == segments.size()) {
    return absl::DataLossError(absl::StrCat(
        "the log in ", dir, " starts at ", segments.front().name,
        ", which continues an older segment that is missing (no first segment or checkpoint)"));
  }
  const auto first_live = segments.begin() + static_cast<std::ptrdiff_t>(base);
  plan->obsolete.assign(segments.begin(), first_live);
  plan->live.assign(first_live, segments.end());
  return absl::OkStatus();
}

absl::Status CheckLog(const std::string& dir, FileSystem* fs, std::vector<SegmentReport>* report,
                      const std::function<void(const RecordInfo&)>& visit) {
  if (report) report->clear();
  LogPlan plan;
  if (absl::Status s = PlanLog(dir, fs, &plan); !s.ok()) return s;
  for (const SegmentFile& segment : plan.obsolete) {
    if (report == nullptr) break;
    SegmentReport entry;
    entry.file = segment.name;
    entry.sequence = segment.sequence;
    entry.live = false;
    if (auto size = fs->FileSize(segment.path); size.ok()) entry.bytes = *size;
    report->push_back(std::move(entry));
  }
  absl::Status first_error;
  for (size_t i = 0; i < plan.live.size(); ++i) {
    const SegmentFile& segment = plan.live[i];
    const bool is_last = i + 1 == plan.live.size();
    std::string data;
    if (absl::Status s = fs->ReadFile(segment.path, &data); !s.ok()) return s;
    std::function<void(const RecordView&)> per_record;
    if (visit) {
      per_record = [&](const RecordView& r) {
        visit(RecordInfo{segment.name, r.offset, r.type, r.payload});
      };
    }
    const SegmentScan scan = ScanSegment(data, per_record);
    absl::Status verdict = SegmentVerdict(segment.path, scan, is_last);
    if (first_error.ok()) first_error = verdict;
    if (report) {
      SegmentReport entry;
      entry.file = segment.name;
      entry.sequence = segment.sequence;
      entry.bytes = scan.file_bytes;
      entry.base = (scan.header.flags & kFlagBase) != 0;
      entry.checkpoint_bytes = scan.header.checkpoint_bytes;
      entry.records = scan.records;
      entry.good_bytes = scan.good_bytes;
      entry.torn_tail = verdict.ok() && scan.state == SegmentScan::State::kTorn;
      if (verdict.ok() && scan.state == SegmentScan::State::kZeroTail) {
        entry.zero_tail_bytes = scan.file_bytes - scan.good_bytes;
      }
      if (scan.state != SegmentScan::State::kClean && scan.state != SegmentScan::State::kZeroTail) {
        entry.tail_problem = scan.problem;
      }
      entry.status = std::move(verdict);
      report->push_back(std::move(entry));
    }
  }
  return first_error;
}

}  // namespace txcoord::wal
