#include "bench/open_txn_memory.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/latency_stats.h"
#include "bench/proc_stats.h"
#include "rpc/grpc_util.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::bench {
namespace {

// Enough concurrent callers to keep both cores of a small machine busy.
constexpr int kThreads = 8;

// Opens `count` transactions from kThreads threads; the first error, if any.
absl::Status OpenTransactions(v1::Coordinator::Stub* stub, int64_t count, int branches) {
  std::atomic<int64_t> next{0};
  absl::Mutex mu;
  absl::Status first_error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      while (next.fetch_add(1) < count) {
        grpc::ClientContext begin_context;
        SetDeadline(&begin_context, absl::Seconds(10));
        v1::BeginRequest begin;
        begin.set_timeout_ms(3'600'000);  // the maximum: none may expire while measured
        v1::BeginResponse begun;
        absl::Status status = FromGrpcStatus(stub->Begin(&begin_context, begin, &begun));
        for (int b = 0; b < branches && status.ok(); ++b) {
          grpc::ClientContext context;
          SetDeadline(&context, absl::Seconds(10));
          v1::EnlistRequest enlist;
          enlist.set_txid(begun.txid());
          enlist.set_participant(absl::StrCat("memory-probe-", b));
          // Port 9 (discard): nothing is ever sent there while measured.
          enlist.set_endpoint(absl::StrCat("127.0.0.1:9"));
          v1::EnlistResponse enlisted;
          status = FromGrpcStatus(stub->Enlist(&context, enlist, &enlisted));
        }
        if (!status.ok()) {
          absl::MutexLock lock(&mu);
          if (first_error.ok()) first_error = status;
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return first_error;
}

}  // namespace

absl::StatusOr<OpenTxnMemory> MeasureOpenTxnMemory(const std::string& address, pid_t pid,
                                                   int64_t transactions, int branches) {
  std::unique_ptr<v1::Coordinator::Stub> stub = v1::Coordinator::NewStub(MakeChannel(address));
  OpenTxnMemory result;
  result.transactions = transactions;
  result.branches = branches;
  const Clock::time_point start = Clock::now();
  absl::StatusOr<int64_t> rss = ResidentBytes(pid);
  if (!rss.ok()) return rss.status();
  result.rss_before = *rss;
  const int64_t half = transactions / 2;
  if (absl::Status s = OpenTransactions(stub.get(), half, branches); !s.ok()) return s;
  rss = ResidentBytes(pid);
  if (!rss.ok()) return rss.status();
  result.rss_half = *rss;
  if (absl::Status s = OpenTransactions(stub.get(), transactions - half, branches); !s.ok()) {
    return s;
  }
  rss = ResidentBytes(pid);
  if (!rss.ok()) return rss.status();
  result.rss_after = *rss;
  result.bytes_per_transaction = static_cast<double>(result.rss_after - result.rss_half) /
                                 static_cast<double>(transactions - half);
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace txcoord::bench
