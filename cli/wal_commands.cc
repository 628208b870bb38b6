// txctl wal check|dump: the coordinator's WAL read offline, with the same
// code and verdict as the coordinator's start (wal::CheckLog), and its
// records decoded as recovery decodes them (coordinator/records.h).
#include <sys/stat.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_writer.h"
#include "coordinator/records.h"
#include "coordinator/recovery_state.h"
#include "coordinator/wal/file_system.h"
#include "coordinator/wal/log_reader.h"

namespace txcoord::cli {
namespace {

using coordinator::LogCommit;

struct DumpedRecord {
  std::string file;
  uint64_t offset = 0;
  std::string type;  // COMMIT, END, MARK_DONE, ONE_PHASE, RETAINED, EXPIRED
  std::string txid;
  std::vector<coordinator::BranchRef> branches;  // COMMIT; ONE_PHASE: its one branch
  std::string participant;                       // MARK_DONE: the branch an operator settled
  std::string note;                              // MARK_DONE: what the operator did
  bool committed = false;                        // END: of a transaction with no COMMIT record
  uint64_t epoch = 0;                            // RETAINED, EXPIRED
  uint64_t sequence = 0;                         // RETAINED: first of the chunk; EXPIRED: the mark
  uint64_t count = 0;                            // RETAINED: committed txids in the chunk
};

struct WalReport {
  std::string dir;  // the directory that holds the segments
  absl::Status status;
  std::vector<wal::SegmentReport> segments;
  std::vector<DumpedRecord> records;
  std::map<std::string, LogCommit> unfinished;                // COMMIT without END, by txid
  std::map<std::string, coordinator::LogOnePhase> one_phase;  // ONE_PHASE without END
  uint64_t retained = 0;  // committed txids whose outcome a start would keep
};

// The parts of a record a person reads; `payload` already passed recovery.
DumpedRecord Describe(const wal::RecordInfo& r) {
  DumpedRecord record{r.file, r.offset, coordinator::RecordTypeName(r.type)};
  switch (r.type) {
    case coordinator::kRecordCommit: {
      LogCommit commit = *coordinator::DecodeCommit(r.payload);
      record.txid = commit.txid;
      record.branches = commit.branches;
      break;
    }
    case coordinator::kRecordEnd: {
      coordinator::LogEnd end = *coordinator::DecodeEnd(r.payload);
      record.txid = end.txid;
      record.committed = end.committed;
      break;
    }
    case coordinator::kRecordMarkDone: {
      coordinator::LogMarkDone mark = *coordinator::DecodeMarkDone(r.payload);
      record.txid = mark.txid;
      record.participant = mark.participant;
      record.note = mark.note;
      break;
    }
    case coordinator::kRecordOnePhase: {
      coordinator::LogOnePhase one_phase = *coordinator::DecodeOnePhase(r.payload);
      record.txid = one_phase.txid;
      record.branches = {one_phase.branch};
      break;
    }
    case coordinator::kRecordRetained: {
      coordinator::OutcomeChunk chunk = *coordinator::DecodeRetained(r.payload);
      record.epoch = chunk.epoch;
      record.sequence = chunk.first_sequence;
      for (char byte : chunk.bitmap) record.count += absl::popcount(static_cast<uint8_t>(byte));
      break;
    }
    case coordinator::kRecordExpired: {
      coordinator::ExpiredMark mark = *coordinator::DecodeExpired(r.payload);
      record.epoch = mark.epoch;
      record.sequence = mark.sequence;
      break;
    }
  }
  return record;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Accepts the coordinator's --data-dir as well as its wal/ directory.
std::string WalDirOf(const std::string& dir) {
  const std::string nested = dir + "/wal";
  return IsDir(nested) ? nested : dir;
}

WalReport Read(const std::string& dir_arg) {
  WalReport report;
  report.dir = WalDirOf(dir_arg);
  absl::Status decode_error;
  coordinator::RecoveryState state;
  report.status = wal::CheckLog(
      report.dir, wal::PosixFileSystem(), &report.segments, [&](const wal::RecordInfo& r) {
        if (!decode_error.ok()) return;
        // Recovery refuses a record it cannot decode, so the check does too.
        if (absl::Status s = state.Apply(r.type, r.payload); !s.ok()) {
          const char* name = coordinator::RecordTypeName(r.type);
          decode_error = absl::DataLossError(
              name[0] == '?' ? absl::StrCat("unknown record type ", r.type, " in ", r.file,
                                            " at offset ", r.offset)
                             : absl::StrCat("bad ", name, " record in ", r.file, " at offset ",
                                            r.offset, ": ", s.message()));
          return;
        }
        DumpedRecord record = Describe(r);
        report.records.push_back(std::move(record));
      });
  if (report.status.ok() && !decode_error.ok()) report.status = decode_error;
  report.unfinished = state.unfinished();
  report.one_phase = state.one_phase();
  report.retained = state.outcomes().committed_count();
  if (report.status.ok() && report.segments.empty()) {
    report.status = absl::NotFoundError(
        absl::StrCat("no WAL segments in ", report.dir,
                     " (give the coordinator's --data-dir or its wal/ directory)"));
  }
  return report;
}

std::string SegmentState(const wal::SegmentReport& s) {
  if (!s.live) return "obsolete (deleted unread on the next start)";
  if (!s.status.ok()) return absl::StrCat("CORRUPT: ", s.status.message());
  if (s.torn_tail) {
    return absl::StrCat("ok; torn tail at offset ", s.good_bytes, " (", s.tail_problem,
                        "): cut on the next start");
  }
  if (s.zero_tail_bytes > 0) {
    return absl::StrCat("ok; ", s.zero_tail_bytes,
                        " zero bytes written ahead of appends from offset ", s.good_bytes);
  }
  return "ok";
}

std::string BranchList(const std::vector<coordinator::BranchRef>& branches) {
  std::vector<std::string> parts;
  for (const auto& b : branches) parts.push_back(absl::StrCat(b.participant, "@", b.endpoint));
  return absl::StrJoin(parts, ", ");
}

void WriteBranches(JsonWriter& json, const std::vector<coordinator::BranchRef>& branches) {
  json.BeginArray();
  for (const auto& b : branches) {
    json.BeginObject().Key("participant").String(b.participant);
    json.Key("endpoint").String(b.endpoint).EndObject();
  }
  json.EndArray();
}

void WriteReport(JsonWriter& json, const WalReport& report, bool with_records) {
  json.BeginObject();
  json.Key("dir").String(report.dir);
  json.Key("ok").Bool(report.status.ok());
  json.Key("error").String(report.status.message());
  json.Key("segments").BeginArray();
  for (const wal::SegmentReport& s : report.segments) {
    json.BeginObject();
    json.Key("file").String(s.file).Key("sequence").Uint(s.sequence).Key("bytes").Uint(s.bytes);
    json.Key("live").Bool(s.live).Key("base").Bool(s.base).Key("records").Uint(s.records);
    json.Key("torn_tail").Bool(s.torn_tail).Key("good_bytes").Uint(s.good_bytes);
    json.Key("zero_tail_bytes").Uint(s.zero_tail_bytes);
    json.Key("problem").String(s.live && !s.status.ok() ? std::string(s.status.message())
                                                        : s.tail_problem);
    json.EndObject();
  }
  json.EndArray();
  json.Key("records_read").Uint(report.records.size());
  if (with_records) {
    json.Key("records").BeginArray();
    for (const DumpedRecord& r : report.records) {
      json.BeginObject().Key("file").String(r.file).Key("offset").Uint(r.offset);
      json.Key("type").String(r.type).Key("txid").String(r.txid);
      if (r.type == "COMMIT" || r.type == "ONE_PHASE") {
        WriteBranches(json.Key("branches"), r.branches);
      }
      if (r.type == "END") json.Key("committed").Bool(r.committed);
      if (r.type == "MARK_DONE") {
        json.Key("participant").String(r.participant).Key("note").String(r.note);
      }
      if (r.type == "RETAINED" || r.type == "EXPIRED") {
        json.Key("epoch").Uint(r.epoch).Key("sequence").Uint(r.sequence);
      }
      if (r.type == "RETAINED") json.Key("committed_count").Uint(r.count);
      json.EndObject();
    }
    json.EndArray();
  }
  json.Key("unfinished").BeginArray();
  for (const auto& [txid, commit] : report.unfinished) {
    json.BeginObject().Key("txid").String(txid).Key("branches");
    WriteBranches(json, commit.branches);
    json.EndObject();
  }
  json.EndArray();
  json.Key("unfinished_one_phase").BeginArray();
  for (const auto& [txid, one_phase] : report.one_phase) {
    json.BeginObject().Key("txid").String(txid).Key("branches");
    WriteBranches(json, {one_phase.branch});
    json.EndObject();
  }
  json.EndArray();
  json.Key("retained_committed").Uint(report.retained);
  json.EndObject();
}

void PrintSummary(const WalReport& report) {
  Table segments({"SEGMENT", "BYTES", "RECORDS", "STATE"});
  for (const wal::SegmentReport& s : report.segments) {
    segments.AddRow(
        {s.file, absl::StrCat(s.bytes), s.live ? absl::StrCat(s.records) : "-", SegmentState(s)});
  }
  std::cout << "WAL " << report.dir << "\n" << segments.Render();
  std::cout << report.unfinished.size() << " committed transaction(s) without END"
            << (report.status.ok() ? " (recovery re-drives their phase 2)"
                                   : " among the records before the corruption");
  if (!report.unfinished.empty()) {
    std::vector<std::string> txids;
    for (const auto& [txid, commit] : report.unfinished) txids.push_back(txid);
    std::cout << ": " << absl::StrJoin(txids, ", ");
  }
  std::cout << "\n";
  if (!report.one_phase.empty()) {
    std::vector<std::string> txids;
    for (const auto& [txid, one_phase] : report.one_phase) txids.push_back(txid);
    std::cout << report.one_phase.size()
              << " one-phase commit(s) without END (recovery asks their branch): "
              << absl::StrJoin(txids, ", ") << "\n";
  }
  std::cout << report.retained << " committed txid(s) whose outcome is retained\n";
}

int Finish(const Invocation& invocation, const WalReport& report, bool with_records) {
  if (invocation.json) {
    JsonWriter json;
    WriteReport(json, report, with_records);
    std::cout << json.str() << "\n";
  }
  if (report.status.ok()) {
    if (!invocation.json) {
      std::cout << "log is healthy: " << report.records.size() << " record(s) in "
                << report.segments.size() << " segment file(s); the coordinator will open it\n";
    }
    return kExitOk;
  }
  const int code = ExitCodeFor(report.status);
  std::cerr << "txctl: wal: " << (code == kExitCorrupt ? "log is CORRUPT: " : "")
            << report.status.message()
            << (code == kExitCorrupt ? "\nThe coordinator refuses to start on it; see "
                                       "docs/operations.md (\"The WAL is corrupt\")."
                                     : "")
            << "\n";
  return code;
}

}  // namespace

int RunWalCheck(const Invocation& invocation) {
  WalReport report = Read(invocation.args[0]);
  if (!invocation.json && !report.segments.empty()) PrintSummary(report);
  return Finish(invocation, report, /*with_records=*/false);
}

int RunWalDump(const Invocation& invocation) {
  WalReport report = Read(invocation.args[0]);
  if (!invocation.json) {
    Table records({"SEGMENT", "OFFSET", "TYPE", "TXID", "BRANCHES"});
    for (const DumpedRecord& r : report.records) {
      std::string branches;
      if (r.type == "COMMIT" || r.type == "ONE_PHASE") branches = BranchList(r.branches);
      if (r.type == "END" && r.committed) branches = "committed (no COMMIT record)";
      if (r.type == "RETAINED") {
        branches = absl::StrCat("epoch ", r.epoch, " sequences ", r.sequence, "+: ", r.count,
                                " committed");
      }
      if (r.type == "EXPIRED") {
        branches = r.sequence == UINT64_MAX
                       ? absl::StrCat("outcomes expired through all of epoch ", r.epoch)
                       : absl::StrCat("outcomes expired through epoch ", r.epoch, " sequence ",
                                      r.sequence);
      }
      if (r.type == "MARK_DONE") {
        branches = absl::StrCat(r.participant, " marked done", r.note.empty() ? "" : ": ",
                                Truncate(r.note, 80));
      }
      records.AddRow({r.file, absl::StrCat(r.offset), r.type, r.txid, branches});
    }
    if (!report.segments.empty()) {
      std::cout << records.Render() << "\n";
      PrintSummary(report);
    }
  }
  return Finish(invocation, report, /*with_records=*/true);
}

}  // namespace txcoord::cli
