// Fuzzing the WAL's reader and recovery. Two shapes of input, told apart by
// the first byte:
//   raw:        the bytes are split into 1-3 segment files as they are, so
//               headers, CRCs and lengths are all attacker-controlled;
//   structured: the bytes describe records, which are framed correctly into
//               1-2 segments and then damaged in one way (cut, flip, zero),
//               so that the fuzzer reaches the torn-tail-versus-corruption
//               rules instead of failing at the first CRC.
// Properties: CheckLog and Log::Open return a status and agree; Open replays
// exactly what CheckLog visits; a structured log replays a prefix of what
// was written, unchanged; after Open cut a torn tail, appends work and a
// second Open sees them.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log.h"
#include "coordinator/wal/log_format.h"
#include "coordinator/wal/log_reader.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/fuzz_targets.h"

namespace txcoord::fuzz {
namespace {

constexpr char kDir[] = "/fuzz/wal";

struct Visit {
  absl::Status status;
  std::vector<wal::Record> records;
};

Visit Check(wal::FakeFileSystem* fs) {
  Visit v;
  v.status = wal::CheckLog(kDir, fs, nullptr, [&](const wal::RecordInfo& r) {
    v.records.push_back({r.type, std::string(r.payload)});
  });
  return v;
}

bool Same(const std::vector<wal::Record>& a, const std::vector<wal::Record>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].type != b[i].type || a[i].payload != b[i].payload) return false;
  }
  return true;
}

// Open must agree with CheckLog and replay the same records; when it opens,
// an append must survive a reopen.
void OpenAgrees(wal::FakeFileSystem* fs, const Visit& checked) {
  wal::LogOptions options;
  options.dir = kDir;
  options.fs = fs;
  std::vector<wal::Record> replayed;
  auto log = wal::Log::Open(options, [&](const wal::Record& r) { replayed.push_back(r); });
  Require(log.ok() == checked.status.ok(),
          absl::StrCat("CheckLog says ", checked.status.ToString(), " but Open says ",
                       log.status().ToString()));
  if (!log.ok()) {
    Require(log.status().code() == checked.status.code(), "CheckLog and Open fail differently");
    return;
  }
  Require(Same(replayed, checked.records), "Open replayed other records than CheckLog visited");
  Require((*log)->AppendSync(9, "after-repair").ok(), "append after Open failed");
  log->reset();
  Visit again = Check(fs);
  Require(again.status.ok(), absl::StrCat("log broken after repair: ", again.status.ToString()));
  replayed.push_back({9, "after-repair"});
  Require(Same(again.records, replayed), "records lost or changed across a reopen");
}

void Raw(Input& in) {
  wal::FakeFileSystem fs;
  Require(fs.CreateDir("/fuzz").ok() && fs.CreateDir(kDir).ok(), "mkdir");
  const int segments = 1 + in.Byte() % 3;
  const uint64_t first = 1 + in.Byte() % 4;
  std::vector<size_t> sizes;
  for (int i = 0; i < segments; ++i) sizes.push_back(in.Byte() * 4 + in.Byte());
  if (in.Byte() & 1) fs.SetContents(absl::StrCat(kDir, "/", wal::SegmentFileName(9), ".tmp"), "x");
  for (int i = 0; i < segments; ++i) {
    const size_t n = i + 1 == segments ? in.Left() : sizes[i];
    fs.SetContents(absl::StrCat(kDir, "/", wal::SegmentFileName(first + i)), in.Take(n));
  }
  OpenAgrees(&fs, Check(&fs));
}

void Structured(Input& in) {
  wal::FakeFileSystem fs;
  Require(fs.CreateDir("/fuzz").ok() && fs.CreateDir(kDir).ok(), "mkdir");
  const int segments = 1 + in.Byte() % 2;
  const int damage = in.Byte() % 4;  // 0 none, 1 cut, 2 flip a byte, 3 zero the tail
  const size_t where = in.Byte() * 256 + in.Byte();
  const int damaged_segment = in.Byte() % segments;
  std::vector<wal::Record> written;
  std::vector<std::string> files;
  for (int s = 0; s < segments; ++s) {
    wal::SegmentHeader header;
    header.sequence = 1 + s;
    header.flags = s == 0 ? wal::kFlagBase : 0;
    std::string bytes;
    wal::AppendSegmentHeader(header, &bytes);
    const int records = in.Byte() % 8;
    for (int r = 0; r < records; ++r) {
      const uint8_t type = wal::kMinUserType + in.Byte() % wal::kMaxUserType;
      std::string payload = in.Take(in.Byte());
      // No zero bytes: then no payload can hold a whole valid frame (its
      // length field has a zero high byte), which the reader would take as
      // proof of corruption rather than a torn tail (docs/testing.md,
      // "Findings"). Raw mode keeps such payloads.
      for (char& c : payload) c = c == 0 ? 1 : c;
      wal::AppendRecord(type, payload, &bytes);
      written.push_back({type, std::move(payload)});
    }
    files.push_back(std::move(bytes));
  }
  std::string& target = files[damaged_segment];
  const size_t at = target.empty() ? 0 : where % target.size();
  if (damage == 1) target.resize(at);
  if (damage == 2 && !target.empty())
    target[at] = static_cast<char>(target[at] ^ (1 + in.Byte() % 255));
  if (damage == 3) target.replace(at, std::string::npos, target.size() - at, '\0');
  for (int s = 0; s < segments; ++s) {
    fs.SetContents(absl::StrCat(kDir, "/", wal::SegmentFileName(1 + s)), files[s]);
  }
  Visit checked = Check(&fs);
  if (damage == 0) {
    Require(checked.status.ok(),
            absl::StrCat("undamaged log refused: ", checked.status.ToString()));
    Require(Same(checked.records, written), "undamaged log replayed wrongly");
  }
  if ((damage == 1 || damage == 3) && damaged_segment + 1 == segments &&
      at >= wal::kSegmentHeaderBytes) {
    Require(checked.status.ok(),
            absl::StrCat("a cut or zeroed tail of the last segment was refused: ",
                         checked.status.ToString()));
  }
  if (checked.status.ok()) {
    // Never a record that was not written, never one changed: a prefix of
    // what was written, or, when an older segment was cut, a subsequence.
    // (A segment cut exactly at a record boundary looks complete; only logs
    // without checkpoints keep older segments live: docs/testing.md.)
    const bool older_cut = damage == 1 && damaged_segment + 1 < segments;
    if (older_cut) {
      size_t next = 0;
      for (const wal::Record& r : checked.records) {
        while (next < written.size() &&
               (written[next].type != r.type || written[next].payload != r.payload)) {
          ++next;
        }
        Require(next < written.size(), "replayed a record that was never written");
        ++next;
      }
    } else {
      Require(checked.records.size() <= written.size(), "more records than written");
      Require(Same(checked.records, std::vector<wal::Record>(
                                        written.begin(), written.begin() + checked.records.size())),
              "replayed records are not a prefix of the written ones");
    }
  }
  OpenAgrees(&fs, checked);
}

}  // namespace

int FuzzWalReader(const uint8_t* data, size_t size) {
  Input in(data, size);
  if (in.Byte() & 1) {
    Structured(in);
  } else {
    Raw(in);
  }
  return 0;
}

}  // namespace txcoord::fuzz
