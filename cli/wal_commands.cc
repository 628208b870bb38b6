// txctl wal check|dump: the coordinator's WAL read offline, with the same
// code and verdict as the coordinator's start (wal::CheckLog), and its
// records decoded as recovery decodes them (coordinator/records.h).
#include <sys/stat.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/format.h"
#include "cli/json_writer.h"
#include "coordinator/records.h"
#include "coordinator/wal/file_system.h"
#include "coordinator/wal/log_reader.h"

namespace txcoord::cli {
namespace {

using coordinator::LogCommit;

struct DumpedRecord {
  std::string file;
  uint64_t offset = 0;
  std::string type;  // COMMIT, END, MARK_DONE
  std::string txid;
  std::vector<coordinator::BranchRef> branches;
  std::string participant;  // MARK_DONE: the branch an operator settled
  std::string note;         // MARK_DONE: what the operator did
};

struct WalReport {
  std::string dir;  // the directory that holds the segments
  absl::Status status;
  std::vector<wal::SegmentReport> segments;
  std::vector<DumpedRecord> records;
  std::map<std::string, LogCommit> unfinished;  // COMMIT without END, by txid
};

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
  report.status = wal::CheckLog(
      report.dir, wal::PosixFileSystem(), &report.segments, [&](const wal::RecordInfo& r) {
        if (!decode_error.ok()) return;
        DumpedRecord record{r.file, r.offset, "", "", {}};
        // Recovery refuses a record it cannot decode, so the check does too.
        if (r.type == coordinator::kRecordCommit) {
          absl::StatusOr<LogCommit> commit = coordinator::DecodeCommit(r.payload);
          if (!commit.ok()) {
            decode_error =
                absl::DataLossError(absl::StrCat("bad COMMIT record in ", r.file, " at offset ",
                                                 r.offset, ": ", commit.status().message()));
            return;
          }
          record.type = "COMMIT";
          record.txid = commit->txid;
          record.branches = commit->branches;
          report.unfinished[commit->txid] = *commit;
        } else if (r.type == coordinator::kRecordEnd) {
          absl::StatusOr<std::string> txid = coordinator::DecodeEnd(r.payload);
          if (!txid.ok()) {
            decode_error =
                absl::DataLossError(absl::StrCat("bad END record in ", r.file, " at offset ",
                                                 r.offset, ": ", txid.status().message()));
            return;
          }
          record.type = "END";
          record.txid = *txid;
          report.unfinished.erase(*txid);
        } else if (r.type == coordinator::kRecordMarkDone) {
          absl::StatusOr<coordinator::LogMarkDone> mark = coordinator::DecodeMarkDone(r.payload);
          if (!mark.ok()) {
            decode_error =
                absl::DataLossError(absl::StrCat("bad MARK_DONE record in ", r.file, " at offset ",
                                                 r.offset, ": ", mark.status().message()));
            return;
          }
          record.type = "MARK_DONE";
          record.txid = mark->txid;
          record.participant = mark->participant;
          record.note = mark->note;
        } else {
          decode_error = absl::DataLossError(absl::StrCat("unknown record type ", r.type, " in ",
                                                          r.file, " at offset ", r.offset));
          return;
        }
        report.records.push_back(std::move(record));
      });
  if (report.status.ok() && !decode_error.ok()) report.status = decode_error;
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
      if (r.type == "COMMIT") WriteBranches(json.Key("branches"), r.branches);
      if (r.type == "MARK_DONE") {
        json.Key("participant").String(r.participant).Key("note").String(r.note);
      }
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
  json.EndArray().EndObject();
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
      if (r.type == "COMMIT") branches = BranchList(r.branches);
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
