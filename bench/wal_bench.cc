// WAL group-commit benchmark: durable appends per second and append latency
// with 1, 4, 16 and 64 concurrent writers on a real directory, next to the
// floor measured in the same run on the same disk: one small append plus
// fdatasync, back to back, appended and over zeros written ahead (what
// --preallocate_bytes buys). Group commit is working when many writers get far
// more durable records per second than one writer, at similar latency.
//
//   wal_bench                       # temp dir under /tmp, ~2 s per row
//   wal_bench --dir=/data --smoke   # ~1 s in total, for CI
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/latency_stats.h"
#include "common/flag_usage.h"
#include "common/logging.h"
#include "coordinator/wal/file_system.h"
#include "coordinator/wal/log.h"

ABSL_FLAG(std::string, dir, "/tmp",
          "Directory on the disk to measure; the benchmark works in a fresh "
          "subdirectory and removes it afterwards.");
ABSL_FLAG(bool, smoke, false, "Run for about one second in total (CI smoke test).");
ABSL_FLAG(double, seconds, 2.0, "Duration of each row of the table (ignored with --smoke).");
ABSL_FLAG(int, payload_bytes, 128, "Payload size of each record (a COMMIT is about this size).");
ABSL_FLAG(uint64_t, preallocate_bytes, 256ull << 10,
          "LogOptions.preallocate_bytes under test (the coordinator's --wal_preallocate_bytes): "
          "zeros written ahead of the appends. 0: every batch extends the file.");
ABSL_FLAG(std::vector<std::string>, writers, std::vector<std::string>({"1", "4", "16", "64"}),
          "Comma-separated numbers of concurrent writers, one table row each; the "
          "first row is the baseline of the last column.");

namespace txcoord::wal {
namespace {

using bench::Clock;
using bench::Summarize;

struct Floor {
  double median_ms = 0;
  double p99_ms = 0;
  size_t samples = 0;
};

// The disk's own speed limit for a serial writer: write a record-sized
// buffer and fdatasync it, over and over, in a file of the same directory;
// appended (each sync also makes a new file size durable), or over zeros
// written and synced first (what LogOptions.preallocate_bytes buys).
Floor MeasureFloor(const std::string& dir, int payload_bytes, Clock::duration duration,
                   bool over_zeros) {
  const std::string path = JoinPath(dir, "floor.dat");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror("open floor file");
    std::exit(1);
  }
  const std::string buf(static_cast<size_t>(payload_bytes) + 9, 'f');
  constexpr size_t kZeroBytes = 16 << 20;  // more than 2 s of syncs write
  if (over_zeros) {
    const std::string zeros(1 << 20, '\0');
    for (size_t at = 0; at < kZeroBytes; at += zeros.size()) {
      if (::write(fd, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size())) {
        std::perror("floor zeros");
        std::exit(1);
      }
    }
    if (::fdatasync(fd) != 0 || ::lseek(fd, 0, SEEK_SET) != 0) {
      std::perror("floor zeros sync");
      std::exit(1);
    }
  }
  std::vector<Clock::duration> samples;
  const Clock::time_point end = Clock::now() + duration;
  while (Clock::now() < end || samples.size() < 10) {
    if (over_zeros && ::lseek(fd, 0, SEEK_CUR) + buf.size() > kZeroBytes) break;
    const Clock::time_point start = Clock::now();
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) ||
        ::fdatasync(fd) != 0) {
      std::perror("floor write/fdatasync");
      std::exit(1);
    }
    samples.push_back(Clock::now() - start);
  }
  ::close(fd);
  ::unlink(path.c_str());
  const bench::LatencyStats stats = Summarize(std::move(samples));
  return Floor{stats.p50_ms, stats.p99_ms, stats.samples};
}

struct Row {
  int writers = 0;
  double records_per_sec = 0;
  double batches_per_sec = 0;
  double records_per_batch = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double sync_p50_ms = 0;  // the log's own fdatasyncs
  double sync_p99_ms = 0;
};

// `writers` threads each append synced records back to back until the time
// is up; a record counts once AppendSync says it is durable.
Row MeasureWriters(const std::string& dir, int writers, int payload_bytes,
                   Clock::duration duration) {
  LogOptions options;
  options.dir = JoinPath(dir, absl::StrCat("log", writers));
  options.preallocate_bytes = absl::GetFlag(FLAGS_preallocate_bytes);
  // An empty checkpoint lets each rotation delete old segments: a long run
  // keeps disk use bounded like the coordinator does.
  options.checkpoint = [] { return std::vector<Record>(); };
  std::vector<Clock::duration> syncs;  // appended on the writer thread only
  options.sync_observer = [&syncs](absl::Duration d) {
    syncs.push_back(std::chrono::duration_cast<Clock::duration>(absl::ToChronoNanoseconds(d)));
  };
  auto log = Log::Open(options, nullptr);
  if (!log.ok()) {
    std::fprintf(stderr, "open log: %s\n", log.status().ToString().c_str());
    std::exit(1);
  }
  const std::string payload(static_cast<size_t>(payload_bytes), 'p');
  std::vector<std::vector<Clock::duration>> latencies(writers);
  std::atomic<bool> failed{false};
  const Log::Stats before = (*log)->stats();
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + duration;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(writers));
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      while (Clock::now() < end) {
        const Clock::time_point t0 = Clock::now();
        if (!(*log)->AppendSync(1, payload).ok()) {
          failed = true;
          return;
        }
        latencies[w].push_back(Clock::now() - t0);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const Log::Stats after = (*log)->stats();
  log->reset();
  if (failed) {
    std::fprintf(stderr, "an append failed; see the log above\n");
    std::exit(1);
  }
  std::vector<Clock::duration> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  const bench::LatencyStats appends = Summarize(std::move(all));
  const bench::LatencyStats synced = Summarize(std::move(syncs));
  Row row;
  row.writers = writers;
  const double records = static_cast<double>(after.records - before.records);
  const double batches = static_cast<double>(after.batches - before.batches);
  row.records_per_sec = records / elapsed;
  row.batches_per_sec = batches / elapsed;
  row.records_per_batch = batches > 0 ? records / batches : 0;
  row.p50_ms = appends.p50_ms;
  row.p99_ms = appends.p99_ms;
  row.sync_p50_ms = synced.p50_ms;
  row.sync_p99_ms = synced.p99_ms;
  return row;
}

// The benchmark's directory holds files and one level of log directories.
void RemoveTree(const std::string& dir) {
  FileSystem* fs = PosixFileSystem();
  std::vector<std::string> names, inner;
  if (!fs->ListDir(dir, &names).ok()) return;
  for (const std::string& name : names) {
    const std::string path = JoinPath(dir, name);
    if (fs->ListDir(path, &inner).ok()) {
      for (const std::string& file : inner) (void)fs->Remove(JoinPath(path, file));
      ::rmdir(path.c_str());
    } else {
      (void)fs->Remove(path);
    }
  }
  ::rmdir(dir.c_str());
}

int Main() {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const int payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  const auto row_time = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(smoke ? 0.15 : absl::GetFlag(FLAGS_seconds)));
  const auto floor_time = smoke ? std::chrono::milliseconds(300) : std::chrono::seconds(2);
  std::string templ = JoinPath(absl::GetFlag(FLAGS_dir), "wal_bench.XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    std::perror(("mkdtemp " + templ).c_str());
    return 1;
  }
  const std::string dir = templ;
  SetMinLogLevel(LogLevel::kWarning);  // rotations would interleave with the table

  const uint64_t preallocate = absl::GetFlag(FLAGS_preallocate_bytes);
  std::printf("wal_bench: dir=%s payload=%dB row=%.2fs preallocate=%llu%s\n", dir.c_str(),
              payload_bytes, std::chrono::duration<double>(row_time).count(),
              static_cast<unsigned long long>(preallocate), smoke ? " (smoke)" : "");
  const Floor floor = MeasureFloor(dir, payload_bytes, floor_time, /*over_zeros=*/false);
  std::printf(
      "floor: write(%dB)+fdatasync on this disk, one at a time: median %.3f ms, p99 %.3f ms "
      "(%zu samples; a serial writer peaks near %.0f syncs/s)\n",
      payload_bytes + 9, floor.median_ms, floor.p99_ms, floor.samples,
      floor.median_ms > 0 ? 1000.0 / floor.median_ms : 0);
  const Floor over = MeasureFloor(dir, payload_bytes, floor_time, /*over_zeros=*/true);
  std::printf(
      "floor over zeros written ahead (the file size unchanged): median %.3f ms, p99 %.3f ms "
      "(%zu samples)\n\n",
      over.median_ms, over.p99_ms, over.samples);
  std::printf("%7s %10s %10s %13s %9s %9s %13s %13s %11s\n", "writers", "durable/s", "batches/s",
              "records/batch", "p50 ms", "p99 ms", "sync p50 ms", "sync p99 ms", "vs row 1");
  double single = 0;
  for (const std::string& text : absl::GetFlag(FLAGS_writers)) {
    int writers = 0;
    if (!absl::SimpleAtoi(text, &writers) || writers < 1) {
      std::fprintf(stderr, "bad --writers entry \"%s\"\n", text.c_str());
      return 2;
    }
    const Row row = MeasureWriters(dir, writers, payload_bytes, row_time);
    if (single == 0) single = row.records_per_sec;
    std::printf("%7d %10.0f %10.0f %13.2f %9.3f %9.3f %13.3f %13.3f %10.1fx\n", row.writers,
                row.records_per_sec, row.batches_per_sec, row.records_per_batch, row.p50_ms,
                row.p99_ms, row.sync_p50_ms, row.sync_p99_ms,
                single > 0 ? row.records_per_sec / single : 0);
    std::fflush(stdout);
  }
  RemoveTree(dir);
  return 0;
}

}  // namespace
}  // namespace txcoord::wal

int main(int argc, char** argv) {
  txcoord::SetFlagUsage(
      "wal_bench: durable WAL appends per second and append latency at 1..64 concurrent\n"
      "writers (group commit), against this disk's own fdatasync latency measured in the\n"
      "same run. Usage: wal_bench [--dir=/path/on/disk] [--seconds=2] [--smoke]");
  absl::ParseCommandLine(argc, argv);
  return txcoord::wal::Main();
}
