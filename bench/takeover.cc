#include "bench/takeover.h"

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/latency_stats.h"
#include "bench/proc_stats.h"
#include "client/client.h"
#include "cluster/coordinator_directory.h"
#include "cluster/node_record.h"
#include "cluster/registry_connection.h"
#include "common/txid.h"

namespace txcoord::bench {
namespace {

constexpr char kUpdate[] = "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2";
constexpr absl::Duration kTxTimeout = absl::Seconds(10);
// Between Begins while no coordinator is registered for the space: a client
// retrying at once would only spin.
constexpr absl::Duration kBeginBackoff = absl::Milliseconds(20);

double MsSince(Clock::time_point from, Clock::time_point to) { return Millis(to - from); }

// Closed-loop transfers across every agent through the registry, counted by
// the epoch of their txid: the epoch tells which owner began a transaction.
// Thread-safe.
class TransferLoad final {
 public:
  TransferLoad(Client* client, std::vector<AgentClient*> agents, int clients, int rows_per_client)
      : client_(client), agents_(std::move(agents)), rows_per_client_(rows_per_client) {
    for (int c = 0; c < clients; ++c) threads_.emplace_back([this, c] { Loop(c); });
  }
  ~TransferLoad() { Stop(); }
  TransferLoad(const TransferLoad&) = delete;
  TransferLoad& operator=(const TransferLoad&) = delete;

  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  // Waits until `n` transfers begun in `epoch` have committed; returns when
  // the first of them did, or nothing at `deadline`.
  std::optional<Clock::time_point> AwaitCommits(uint64_t epoch, int64_t n, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, epoch, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      auto it = epochs_.find(epoch);
      return it != epochs_.end() && it->second.committed >= n;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&enough), deadline)) return std::nullopt;
    return epochs_[epoch].first_commit;
  }

  int64_t committed() {
    absl::MutexLock lock(&mu_);
    int64_t total = 0;
    for (const auto& [epoch, tally] : epochs_) total += tally.committed;
    return total;
  }
  int64_t failed() {
    absl::MutexLock lock(&mu_);
    return failed_;
  }

 private:
  struct EpochTally {
    int64_t committed = 0;
    Clock::time_point first_commit;
  };

  void Loop(int client) {
    const int64_t first_row = static_cast<int64_t>(client) * rows_per_client_ + 1;
    const int64_t branches = static_cast<int64_t>(agents_.size());
    for (int64_t i = 0; !stop_.load(); ++i) {
      // The client's rows in turn: a row a killed owner left locked is
      // released (presumed abort, or the agent's idle timeout) long before
      // the client comes back to it.
      const int64_t row = first_row + i % rows_per_client_;
      absl::StatusOr<std::string> txid = client_->Begin(kTxTimeout);
      if (!txid.ok()) {
        absl::SleepFor(kBeginBackoff);
        continue;
      }
      absl::StatusOr<Txid> parsed = ParseTxid(*txid);
      bool ok = parsed.ok();
      for (int64_t b = 0; b < branches && ok; ++b) {
        absl::StatusOr<SqlResult> result =
            agents_[b]->ExecuteOne(*txid, kUpdate, {b == 0 ? 1 - branches : 1, row});
        ok = result.ok() && result->changes == 1;
      }
      if (!ok) {
        (void)client_->Abort(*txid);  // best effort: its deadline aborts it anyway
        Count(0, false);
        continue;
      }
      absl::StatusOr<CommitResult> commit = client_->Commit(*txid);
      Count(parsed->epoch, commit.ok() && commit->committed);
    }
  }

  void Count(uint64_t epoch, bool committed) {
    const Clock::time_point now = Clock::now();
    absl::MutexLock lock(&mu_);
    if (!committed) {
      ++failed_;
      return;
    }
    EpochTally& tally = epochs_[epoch];
    if (tally.committed++ == 0) tally.first_commit = now;
  }

  Client* const client_;
  const std::vector<AgentClient*> agents_;
  const int rows_per_client_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::map<uint64_t, EpochTally> epochs_ ABSL_GUARDED_BY(mu_);
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
};

// When each process was first seen in the registry as the space's
// coordinator (fed from discovery's change notifications). Thread-safe.
class RegistrySightings final {
 public:
  void Saw(int64_t pid) {
    const Clock::time_point now = Clock::now();
    absl::MutexLock lock(&mu_);
    first_seen_.emplace(pid, now);
  }
  // The first process seen after `since`, and when; nothing at `deadline`.
  std::optional<std::pair<int64_t, Clock::time_point>> AwaitNew(Clock::time_point since,
                                                                absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    std::optional<std::pair<int64_t, Clock::time_point>> found;
    auto other = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const auto& [pid, seen] : first_seen_) {
        if (seen > since && (!found.has_value() || seen < found->second)) found = {pid, seen};
      }
      return found.has_value();
    };
    mu_.AwaitWithDeadline(absl::Condition(&other), deadline);
    return found;
  }

 private:
  absl::Mutex mu_;
  std::map<int64_t, Clock::time_point> first_seen_ ABSL_GUARDED_BY(mu_);
};

// The space's keys after a kill, from the revision read at the kill: when
// the owner key was created anew (another process took the space), and
// when the last of the log keys present at the kill was deleted (their
// transactions ended). Thread-safe.
class SpaceWatch final {
 public:
  SpaceWatch(std::string owner_key, int64_t old_fence, std::set<std::string> open_keys)
      : owner_key_(std::move(owner_key)), old_fence_(old_fence), open_(std::move(open_keys)) {
    if (open_.empty()) driven_ = Clock::now();
  }
  ~SpaceWatch() { handle_.reset(); }  // no callback runs past here
  SpaceWatch(const SpaceWatch&) = delete;
  SpaceWatch& operator=(const SpaceWatch&) = delete;

  absl::Status Start(cluster::Etcd* etcd, const std::string& prefix, int64_t from_revision) {
    absl::StatusOr<std::unique_ptr<cluster::WatchHandle>> handle = etcd->WatchPrefix(
        prefix, from_revision,
        [this](const std::vector<cluster::WatchEvent>& events, int64_t) { OnEvents(events); },
        [this](const absl::Status& status) {
          absl::MutexLock lock(&mu_);
          error_ = status;
        });
    if (!handle.ok()) return handle.status();
    handle_ = *std::move(handle);
    return absl::OkStatus();
  }

  // When another process took the owner key; an error if the watch failed,
  // DEADLINE_EXCEEDED at `deadline`.
  absl::StatusOr<Clock::time_point> AwaitOwner(absl::Time deadline) {
    return AwaitSet(&owner_, deadline, "no other process took the owner key");
  }
  // When the last key open at the kill was deleted.
  absl::StatusOr<Clock::time_point> AwaitDriven(absl::Time deadline) {
    return AwaitSet(&driven_, deadline, "the dead owner's open transactions did not end");
  }

 private:
  void OnEvents(const std::vector<cluster::WatchEvent>& events) {
    const Clock::time_point now = Clock::now();
    absl::MutexLock lock(&mu_);
    for (const cluster::WatchEvent& event : events) {
      if (event.type == cluster::WatchEvent::Type::kPut) {
        if (event.kv.key == owner_key_ && event.kv.create_revision != old_fence_ &&
            !owner_.has_value()) {
          owner_ = now;
        }
      } else if (open_.erase(event.kv.key) > 0 && open_.empty()) {
        driven_ = now;
      }
    }
  }

  absl::StatusOr<Clock::time_point> AwaitSet(std::optional<Clock::time_point>* when,
                                             absl::Time deadline, const char* what) {
    absl::MutexLock lock(&mu_);
    auto done = [this, when]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return when->has_value() || !error_.ok();
    };
    mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
    if (when->has_value()) return **when;
    if (!error_.ok()) return error_;
    return absl::DeadlineExceededError(what);
  }

  const std::string owner_key_;
  const int64_t old_fence_;
  absl::Mutex mu_;
  std::set<std::string> open_ ABSL_GUARDED_BY(mu_);
  std::optional<Clock::time_point> owner_ ABSL_GUARDED_BY(mu_);
  std::optional<Clock::time_point> driven_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<cluster::WatchHandle> handle_;  // last: stopped first
};

absl::StatusOr<uint64_t> ReadEpoch(cluster::Etcd* etcd, const std::string& key) {
  absl::StatusOr<cluster::RangeResult> read = etcd->Get(key);
  if (!read.ok()) return read.status();
  uint64_t epoch = 0;
  if (read->kvs.empty() || !absl::SimpleAtoi(read->kvs[0].value, &epoch)) {
    return absl::FailedPreconditionError(absl::StrCat("no epoch at ", key));
  }
  return epoch;
}

absl::Status RoundError(int round, const std::string& what) {
  return absl::DeadlineExceededError(absl::StrCat("takeover round ", round + 1, ": ", what));
}

}  // namespace

absl::StatusOr<TakeoverResult> MeasureTakeovers(const TakeoverSetup& setup, int rounds) {
  cluster::RegistryOptions registry_options;
  registry_options.url = setup.registry_url;
  absl::StatusOr<std::unique_ptr<cluster::RegistryConnection>> connection =
      cluster::RegistryConnection::Open(registry_options);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<cluster::Discovery*> discovery = (*connection)->StartDiscovery();
  if (!discovery.ok()) return discovery.status();
  cluster::Etcd* const etcd = (*connection)->etcd();
  const std::string root = absl::StrCat(cluster::kDefaultPrefix, "/spaces/", setup.space, "/");
  const std::string owner_key = root + "owner";
  const std::string epoch_key = root + "epoch";
  const std::string tx_prefix = root + "log/tx/";

  auto sightings = std::make_shared<RegistrySightings>();
  auto look = [sightings, discovery = *discovery, space = setup.space] {
    absl::StatusOr<cluster::NodeRecord> owner = discovery->Coordinator(space);
    if (owner.ok()) sightings->Saw(owner->pid);
  };
  (*discovery)->OnChange(look);
  look();

  auto directory = std::make_shared<cluster::RegistryCoordinatorDirectory>(
      *discovery, cluster::kDefaultCoordinatorService, cluster::BalancePolicy::kRoundRobin);
  ClientOptions client_options;
  client_options.call_timeout = absl::Seconds(2);
  client_options.commit_timeout = absl::Seconds(10);
  client_options.settle_timeout = setup.round_timeout;
  // A call to the dead owner fails at once instead of waiting out its
  // deadline: the clients measure when the space answers again, not how
  // long a call to a dead address blocks. Commits in flight at the kill
  // still settle with Commit's own backoff.
  client_options.wait_for_ready = false;
  Client client(directory, client_options);
  TransferLoad load(&client, setup.agents, setup.clients, setup.rows_per_client);

  TakeoverResult result;
  absl::StatusOr<uint64_t> epoch = ReadEpoch(etcd, epoch_key);
  if (!epoch.ok()) return epoch.status();
  if (!load.AwaitCommits(*epoch, setup.commits_before_kill, absl::Now() + setup.round_timeout)) {
    return absl::DeadlineExceededError(absl::StrCat("no ", setup.commits_before_kill,
                                                    " transfers committed before the first kill"));
  }
  for (int round = 0; round < rounds; ++round) {
    TakeoverRound r;
    r.old_epoch = *epoch;
    absl::StatusOr<cluster::NodeRecord> owner = (*discovery)->Coordinator(setup.space);
    if (!owner.ok()) return owner.status();
    r.old_pid = owner->pid;
    const int64_t failed_before = load.failed();
    absl::StatusOr<MachineCpu> cpu_before = MachineCpuSeconds();
    if (!cpu_before.ok()) return cpu_before.status();

    const Clock::time_point killed = Clock::now();
    const absl::Time deadline = absl::Now() + setup.round_timeout;
    if (absl::Status s = setup.kill(r.old_pid); !s.ok()) return s;
    // The dead owner writes nothing more: what its space holds now is what
    // a successor must finish.
    absl::StatusOr<cluster::RangeResult> space = etcd->GetPrefix(root);
    if (!space.ok()) return space.status();
    int64_t old_fence = 0;
    std::set<std::string> open_keys;
    for (const cluster::KeyValue& kv : space->kvs) {
      if (kv.key == owner_key) old_fence = kv.create_revision;
      if (!absl::StartsWith(kv.key, tx_prefix)) continue;
      open_keys.insert(kv.key);
      if (absl::EndsWith(kv.key, "/commit")) ++r.open_at_kill;
    }
    SpaceWatch watch(owner_key, old_fence, open_keys);
    if (absl::Status s = watch.Start(etcd, root, space->revision + 1); !s.ok()) return s;

    absl::StatusOr<Clock::time_point> taken = watch.AwaitOwner(deadline);
    if (!taken.ok()) return RoundError(round, std::string(taken.status().message()));
    r.owner_ms = MsSince(killed, *taken);
    std::optional<std::pair<int64_t, Clock::time_point>> registered =
        sightings->AwaitNew(killed, deadline);
    if (!registered.has_value()) return RoundError(round, "no other process registered");
    r.new_pid = registered->first;
    r.registered_ms = MsSince(killed, registered->second);
    epoch = ReadEpoch(etcd, epoch_key);
    if (!epoch.ok()) return epoch.status();
    r.new_epoch = *epoch;
    if (r.new_epoch <= r.old_epoch) return RoundError(round, "the epoch did not grow");
    std::optional<Clock::time_point> first = load.AwaitCommits(r.new_epoch, 1, deadline);
    if (!first.has_value()) return RoundError(round, "no transfer committed on the new owner");
    r.first_commit_ms = MsSince(killed, *first);
    absl::StatusOr<Clock::time_point> driven = watch.AwaitDriven(deadline);
    if (!driven.ok()) return RoundError(round, std::string(driven.status().message()));
    if (r.open_at_kill > 0 || !open_keys.empty()) r.driven_ms = MsSince(killed, *driven);

    // Full speed again before the next kill.
    if (!load.AwaitCommits(r.new_epoch, setup.commits_before_kill, deadline)) {
      return RoundError(round, "the new owner did not reach full speed");
    }
    absl::StatusOr<MachineCpu> cpu_after = MachineCpuSeconds();
    if (!cpu_after.ok()) return cpu_after.status();
    const double total = cpu_after->total - cpu_before->total;
    r.machine_busy = total > 0 ? (cpu_after->busy - cpu_before->busy) / total : 0;
    r.failed = load.failed() - failed_before;
    result.rounds.push_back(r);
    if (absl::Status s = setup.start_standby(); !s.ok()) return s;
  }
  load.Stop();
  result.committed = load.committed();
  result.failed = load.failed();
  return result;
}

}  // namespace txcoord::bench
