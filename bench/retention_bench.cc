// retention_bench: the coordinator's memory and log under an endless
// workload. Runs the real runtime, engine and WAL (on disk, in --dir)
// in-process with participants that answer at once, and drives 2PC,
// one-phase and aborted transactions from many threads. Every tenth of
// the run it prints what the coordinator holds: retained outcomes (count,
// bitmap bytes, chunks dropped), the WAL on disk and the process's resident
// memory. It ends by checking the documented bounds (docs/operations.md,
// "Outcome retention") and exits 1 if one was exceeded.
//
//   retention_bench --transactions=2000000 --retention=2s   # a few minutes
//   retention_bench --smoke                                 # ~5 s, for CI
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/proc_stats.h"
#include "common/logging.h"
#include "common/timer_queue.h"
#include "coordinator/participant_client.h"
#include "coordinator/runtime.h"
#include "coordinator/wal/log.h"

ABSL_FLAG(std::string, dir, "/tmp", "Where to put the WAL (a temporary directory under it).");
ABSL_FLAG(bool, smoke, false, "A short run (CI smoke test): 60,000 transactions.");
ABSL_FLAG(int64_t, transactions, 2000000, "Transactions to run.");
ABSL_FLAG(int, threads, 32, "Client threads (the WAL's group commit batches their records).");
ABSL_FLAG(absl::Duration, retention, absl::Seconds(2),
          "--outcome_retention of the coordinator under test: short, so that the window "
          "turns over many times within the run.");
ABSL_FLAG(uint64_t, max_bytes, 256 << 10, "--outcome_retention_max_bytes under test.");
ABSL_FLAG(uint64_t, segment_bytes, 4 << 20, "--wal_segment_bytes under test.");

namespace txcoord::bench {
namespace {

using coordinator::BranchRef;
using coordinator::Vote;

// Participants that vote YES and acknowledge at once, on the caller's
// thread: the run measures the coordinator alone.
class InstantParticipants final : public coordinator::ParticipantClient {
 public:
  void Prepare(const BranchRef&, const std::string&, absl::Duration,
               std::function<void(absl::StatusOr<Vote>)> done) override {
    done(Vote::kYes);
  }
  void Commit(const BranchRef&, const std::string&, absl::Duration,
              std::function<void(absl::Status)> done) override {
    done(absl::OkStatus());
  }
  void Abort(const BranchRef&, const std::string&, absl::Duration,
             std::function<void(absl::Status)> done) override {
    done(absl::OkStatus());
  }
  void CommitOnePhase(const BranchRef&, const std::string&, absl::Duration,
                      std::function<void(absl::StatusOr<bool>)> done) override {
    done(true);
  }
};

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

struct Sample {
  int64_t transactions = 0;
  uint64_t retained = 0;
  size_t retained_bytes = 0;
  uint64_t dropped = 0;
  uint64_t wal_bytes = 0;
  int64_t rss = 0;
};

int Run() {
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const int64_t total = smoke ? 60000 : absl::GetFlag(FLAGS_transactions);
  const int threads = absl::GetFlag(FLAGS_threads);
  coordinator::RetentionOptions retention;
  retention.retention = smoke ? absl::Milliseconds(500) : absl::GetFlag(FLAGS_retention);
  retention.max_bytes = absl::GetFlag(FLAGS_max_bytes);
  const uint64_t segment_bytes = smoke ? (1 << 20) : absl::GetFlag(FLAGS_segment_bytes);

  std::string dir = absl::StrCat(absl::GetFlag(FLAGS_dir), "/retention_bench.XXXXXX");
  if (::mkdtemp(dir.data()) == nullptr) {
    std::fprintf(stderr, "retention_bench: cannot create a directory under %s\n",
                 absl::GetFlag(FLAGS_dir).c_str());
    return 2;
  }
  SetMinLogLevel(LogLevel::kWarning);

  std::atomic<coordinator::Runtime*> runtime_for_checkpoint{nullptr};
  wal::LogOptions log_options;
  log_options.dir = dir;
  log_options.segment_bytes = segment_bytes;
  log_options.checkpoint = [&] {
    coordinator::Runtime* r = runtime_for_checkpoint.load();
    return r ? r->CheckpointRecords() : std::vector<wal::Record>{};
  };
  absl::StatusOr<std::unique_ptr<wal::Log>> log = wal::Log::Open(log_options, nullptr);
  if (!log.ok()) {
    std::fprintf(stderr, "retention_bench: %s\n", log.status().ToString().c_str());
    return 2;
  }
  TimerQueue timers;
  InstantParticipants participants;
  coordinator::RuntimeOptions options;
  options.engine.cluster_id = "bench";
  options.engine.epoch = 1;
  options.engine.retention = retention;
  coordinator::Runtime runtime(options, log->get(), &participants, &timers);
  runtime_for_checkpoint = &runtime;
  if (absl::Status s = runtime.Recover(coordinator::RecoveryState(retention)); !s.ok()) {
    std::fprintf(stderr, "retention_bench: %s\n", s.ToString().c_str());
    return 2;
  }

  std::printf(
      "retention_bench: %lld transactions (90%% 2PC over 2 branches, 5%% one-phase, 5%% "
      "aborted) from %d threads; retention %s, max %llu bytes, WAL segments of %llu "
      "bytes in %s%s\n",
      static_cast<long long>(total), threads, absl::FormatDuration(retention.retention).c_str(),
      static_cast<unsigned long long>(retention.max_bytes),
      static_cast<unsigned long long>(segment_bytes), dir.c_str(), smoke ? " (smoke)" : "");
  std::printf("%14s %10s %12s %10s %12s %10s %10s\n", "transactions", "tx/s", "retained",
              "bitmap_B", "dropped", "wal_B", "rss_MiB");

  std::atomic<int64_t> next{0};
  std::atomic<int64_t> failures{0};
  std::vector<std::thread> workers;
  const absl::Time start = absl::Now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      absl::BitGen rng;
      while (next.fetch_add(1) < total) {
        absl::StatusOr<coordinator::BeginResult> begun = runtime.Begin(absl::Seconds(30));
        if (!begun.ok()) {
          ++failures;
          continue;
        }
        const int kind = absl::Uniform(rng, 0, 20);  // 0: one-phase, 1: abort, else 2PC
        for (const char* p : {"a", "b"}) {
          if (kind == 0 && p[0] == 'b') break;
          if (!runtime.Enlist(begun->txid, {p, absl::StrCat(p, ":1"), 1}, false).ok()) ++failures;
        }
        if (kind == 1) {
          if (!runtime.Abort(begun->txid).ok()) ++failures;
          continue;
        }
        absl::StatusOr<coordinator::CommitResult> done =
            runtime.Commit(begun->txid, absl::Now() + absl::Seconds(30));
        if (!done.ok() || !done->committed) ++failures;
      }
    });
  }

  std::vector<Sample> samples;
  const int64_t step = std::max<int64_t>(1, total / 10);
  for (int64_t mark = step; mark <= total; mark += step) {
    while (next.load() < mark && next.load() < total) absl::SleepFor(absl::Milliseconds(5));
    coordinator::EngineStats stats = runtime.stats();
    Sample s{std::min(next.load(), total),
             stats.retained_committed,
             stats.retained_bytes,
             stats.retained_chunks_dropped,
             DirBytes(dir),
             ResidentBytes(::getpid()).value_or(0)};
    samples.push_back(s);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("%14lld %10.0f %12llu %10zu %12llu %10llu %10.1f\n",
                static_cast<long long>(s.transactions), s.transactions / seconds,
                static_cast<unsigned long long>(s.retained), s.retained_bytes,
                static_cast<unsigned long long>(s.dropped),
                static_cast<unsigned long long>(s.wal_bytes), s.rss / 1048576.0);
    std::fflush(stdout);
  }
  for (std::thread& w : workers) w.join();
  if (samples.back().dropped == 0) {
    // The engine checks the window at most once a second, on a Begin: a run
    // that ended within about a second of its first chunk filling (a fast
    // machine) has not reached a check since that chunk aged. Let the window
    // pass over every chunk, then begin one more transaction.
    absl::SleepFor(retention.retention + absl::Seconds(1));
    if (absl::StatusOr<coordinator::BeginResult> begun = runtime.Begin(absl::Seconds(30));
        !begun.ok() || !runtime.Abort(begun->txid).ok()) {
      ++failures;
    }
    samples.back().dropped = runtime.stats().retained_chunks_dropped;
    std::printf("%14s %10s %12s %10s %12llu (after the window passed)\n", "", "", "", "",
                static_cast<unsigned long long>(samples.back().dropped));
  }
  runtime.Halt();
  log->reset();
  std::filesystem::remove_all(dir);

  // The bounds docs/operations.md states: the bitmaps never exceed their
  // bound; the WAL holds at most two segments' worth of records plus one
  // checkpoint (the retained bitmaps and the still-open transactions).
  const uint64_t wal_bound = 2 * segment_bytes + retention.max_bytes + (1 << 20);
  int exceeded = 0;
  for (const Sample& s : samples) {
    if (s.retained_bytes > retention.max_bytes) ++exceeded;
    if (s.wal_bytes > wal_bound) ++exceeded;
  }
  const bool pruned = !samples.empty() && samples.back().dropped > 0;
  std::printf(
      "bounds: bitmap <= %llu B, WAL <= %llu B: %s; chunks dropped during the run: %s; "
      "RSS %.1f MiB at 10%%, %.1f MiB at 50%%, %.1f MiB at the end; %lld failed calls\n",
      static_cast<unsigned long long>(retention.max_bytes),
      static_cast<unsigned long long>(wal_bound), exceeded ? "EXCEEDED" : "held",
      pruned ? "yes" : "NO", samples.front().rss / 1048576.0,
      samples[samples.size() / 2].rss / 1048576.0, samples.back().rss / 1048576.0,
      static_cast<long long>(failures.load()));
  return exceeded == 0 && pruned && failures.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace txcoord::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "retention_bench: the coordinator's retained outcomes, WAL and memory under an endless "
      "workload, against their documented bounds. Usage: retention_bench [--smoke] "
      "[--transactions=N] [--retention=2s] [--dir=/path]");
  absl::ParseCommandLine(argc, argv);
  return txcoord::bench::Run();
}
