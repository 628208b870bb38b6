// The coordinator's batching client (coordinator::BatchingParticipantClient)
// over SimParticipantTransport against real participants (ParticipantNode:
// the participant core on the simulated disk), on one simulated thread:
// calls that queue behind a busy participant reach it as one Batch and
// every caller gets its own entry's answer; an agent without Batch gets
// single calls; a participant that is down fails every entry; and under
// lost, duplicated and late messages, many seeds over, every call is
// answered exactly once, nothing is ever answered wrongly, and retrying
// what failed leaves exactly the committed rows.
#include "sim/sim_participant_transport.h"

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/batching_participant_client.h"
#include "gtest/gtest.h"
#include "sim/coordinator_node.h"
#include "sim/history.h"
#include "sim/participant_node.h"
#include "sim/sim_vfs.h"

namespace txcoord::sim {
namespace {

using coordinator::BatchAnswer;
using coordinator::BatchEntry;
using coordinator::BatchingOptions;
using coordinator::BatchingParticipantClient;
using coordinator::BranchRef;
using coordinator::Vote;

constexpr absl::Duration kCallTimeout = absl::Seconds(1);

// Counts how Batch calls ended, passing everything on to `inner`.
class CountingTransport final : public coordinator::ParticipantTransport {
 public:
  explicit CountingTransport(coordinator::ParticipantTransport* inner) : inner_(inner) {}

  void Prepare(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
               absl::Duration timeout, std::function<void(absl::StatusOr<Vote>)> done) override {
    inner_->Prepare(endpoint, txid, branch_token, timeout, std::move(done));
  }
  void Commit(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override {
    inner_->Commit(endpoint, txid, timeout, std::move(done));
  }
  void Abort(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override {
    inner_->Abort(endpoint, txid, timeout, std::move(done));
  }
  void CommitOnePhase(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
                      absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override {
    inner_->CommitOnePhase(endpoint, txid, branch_token, timeout, std::move(done));
  }
  void Batch(const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
             std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) override {
    inner_->Batch(endpoint, std::move(entries), timeout,
                  [this, done = std::move(done)](absl::StatusOr<std::vector<BatchAnswer>> answers) {
                    ++(answers.ok() ? answered : failed);
                    done(std::move(answers));
                  });
  }
  int max_batch_entries() const override { return inner_->max_batch_entries(); }

  int answered = 0;  // Batch calls that came back with an answer per entry
  int failed = 0;    // ... and that failed as a whole

 private:
  coordinator::ParticipantTransport* const inner_;
};

// A coordinator node (for the participants' Enlist calls), `participants`
// ParticipantNodes with table t, and the batching client over the
// simulated transport from the coordinator's node.
std::string VoteText(const absl::StatusOr<Vote>& vote) {
  if (!vote.ok()) return std::string(absl::StatusCodeToString(vote.status().code()));
  switch (*vote) {
    case Vote::kYes:
      return "YES";
    case Vote::kReadOnly:
      return "READ_ONLY";
    default:
      return "another vote";
  }
}

class World {
 public:
  World(uint64_t seed, int participants, BatchingOptions options, bool knows_batch = true)
      : dir_(absl::StrCat("/batching-test/", NextRunNumber())),
        loop_(seed, /*trace_keep=*/2000, /*echo=*/false),
        net_(&loop_),
        history_(&loop_) {
    SimVfs::Install();
    CoordinatorNodeOptions co;
    co.engine.cluster_id = "sim";
    coord_ = std::make_unique<CoordinatorNode>(&loop_, &net_, &history_, net_.AddNode("coord"), co);
    transport_ = std::make_unique<SimParticipantTransport>(
        &loop_, &net_, SimParticipantTransportOptions{coord_->id()});
    for (int i = 0; i < participants; ++i) {
      ParticipantNodeOptions po;
      po.name = absl::StrCat("p", i);
      po.dir = absl::StrCat(dir_, "/", po.name);
      auto node = std::make_unique<ParticipantNode>(
          &loop_, &net_, net_.AddNode(po.name), [this] { return coord_.get(); }, po);
      absl::Status started = node->Start();
      EXPECT_TRUE(started.ok()) << started;
      auto schema = node->Local({{"CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)", {}}});
      EXPECT_TRUE(schema.ok()) << schema.status();
      transport_->AddParticipant(node->endpoint(), node.get(), knows_batch);
      nodes_.push_back(std::move(node));
    }
    absl::Status started = coord_->Start();
    EXPECT_TRUE(started.ok()) << started;
    counting_ = std::make_unique<CountingTransport>(transport_.get());
    client_ = std::make_unique<BatchingParticipantClient>(counting_.get(), &loop_, options);
  }
  ~World() {
    for (auto& node : nodes_) node->Stop();
    SimVfs::Install().RemoveAll(dir_);
  }

  // A new transaction at the coordinator (it must know it for Enlist),
  // with row `id` written at each participant in `writers`.
  std::string Write(int id, const std::vector<int>& writers) {
    absl::StatusOr<coordinator::BeginResult> begun = coord_->Begin(absl::Hours(1));
    // A coordinator that has just started takes a moment (its log) to accept.
    for (int i = 0; i < 1000 && absl::IsUnavailable(begun.status()) && loop_.Step(); ++i) {
      begun = coord_->Begin(absl::Hours(1));
    }
    EXPECT_TRUE(begun.ok()) << begun.status();
    if (!begun.ok()) return "";
    for (int p : writers) {
      auto written = nodes_[p]->Execute(
          begun->txid, {{absl::StrCat("INSERT INTO t VALUES (", id, ", ", id, ")"), {}}}, false);
      EXPECT_TRUE(written.ok()) << written.status();
    }
    return begun->txid;
  }

  BranchRef Branch(int p) const { return BranchRef{nodes_[p]->name(), nodes_[p]->endpoint(), 0}; }

  // Runs events until `done` or `limit` of simulated time has passed.
  void RunUntil(const std::function<bool()>& done, absl::Duration limit = absl::Minutes(1)) {
    const absl::Time end = loop_.now() + limit;
    while (!done() && loop_.now() < end && loop_.Step()) {
    }
  }

  // Sends Prepare for every txid to participant 0 at once and runs until
  // each has its answer; each answer must come once.
  std::map<std::string, std::string> PrepareAll(const std::vector<std::string>& txids) {
    auto votes = std::make_shared<std::map<std::string, std::string>>();
    for (const std::string& txid : txids) {
      client().Prepare(Branch(0), txid, kCallTimeout, [votes, txid](absl::StatusOr<Vote> vote) {
        EXPECT_TRUE(votes->emplace(txid, VoteText(vote)).second) << txid;
      });
    }
    RunUntil([&] { return votes->size() == txids.size(); });
    return *votes;
  }

  // Rows of t at participant `p`, as "id,id,...".
  std::string Rows(int p) {
    auto rows =
        nodes_[p]->Local({{"SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY id)", {}}});
    if (!rows.ok()) return rows.status().ToString();
    const SqlValue& v = rows->results.at(0).rows.at(0).at(0);
    return std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : "";
  }

  int BatchLinesAt(int p, size_t entries) const {
    int n = 0;
    for (const std::string& line : loop_.TraceTail()) {
      n += absl::StrContains(line, absl::StrCat(nodes_[p]->name(), " Batch of ", entries, ":"));
    }
    return n;
  }

  EventLoop& loop() { return loop_; }
  Network& net() { return net_; }
  ParticipantNode& node(int p) { return *nodes_[p]; }
  BatchingParticipantClient& client() { return *client_; }
  CountingTransport& counting() { return *counting_; }

 private:
  static uint64_t NextRunNumber() {
    static std::atomic<uint64_t> next{1};
    return next++;
  }

  const std::string dir_;
  EventLoop loop_;
  Network net_;
  History history_;
  std::unique_ptr<CoordinatorNode> coord_;
  std::vector<std::unique_ptr<ParticipantNode>> nodes_;
  std::unique_ptr<SimParticipantTransport> transport_;
  std::unique_ptr<CountingTransport> counting_;
  std::unique_ptr<BatchingParticipantClient> client_;
};

std::string StatusText(const absl::Status& status) {
  return status.ok() ? "OK" : std::string(absl::StatusCodeToString(status.code()));
}

BatchingOptions OneSlot() {
  BatchingOptions options;
  options.max_in_flight = 1;
  return options;
}

TEST(SimParticipantTransportTest, QueuedCallsReachTheRealParticipantAsOneBatch) {
  World world(/*seed=*/1, /*participants=*/1, OneSlot());
  std::vector<std::string> written;
  for (int id = 0; id < 5; ++id) written.push_back(world.Write(id, {0}));
  // Inserted and deleted again: a branch that wrote nothing in the end.
  const std::string read_only = world.Write(100, {0});
  ASSERT_TRUE(world.node(0).Execute(read_only, {{"DELETE FROM t WHERE id = 100", {}}}, false).ok());
  const std::string unknown = "sim.1.999";  // never reached p0

  std::vector<std::string> all = written;
  all.push_back(read_only);
  all.push_back(unknown);
  std::map<std::string, std::string> votes = world.PrepareAll(all);
  ASSERT_EQ(votes.size(), all.size());
  for (const std::string& txid : written) EXPECT_EQ(votes[txid], "YES") << txid;
  EXPECT_EQ(votes[read_only], "READ_ONLY");
  EXPECT_EQ(votes[unknown], "ABORTED");
  EXPECT_EQ(world.client().batches_sent(), 1);
  EXPECT_EQ(world.client().batched_entries(), 6) << "all but the first, which went alone";
  EXPECT_EQ(world.BatchLinesAt(0, 6), 1) << "the participant ran one batch of six";

  // Phase 2: four commits and an abort, again one alone and the rest together.
  std::map<std::string, std::string> acks;
  for (size_t i = 0; i < written.size(); ++i) {
    auto ack = [&acks, txid = written[i]](absl::Status s) {
      EXPECT_TRUE(acks.emplace(txid, StatusText(s)).second) << txid;
    };
    if (i < 4) {
      world.client().Commit(world.Branch(0), written[i], kCallTimeout, ack);
    } else {
      world.client().Abort(world.Branch(0), written[i], kCallTimeout, ack);
    }
  }
  world.RunUntil([&] { return acks.size() == written.size(); });
  ASSERT_EQ(acks.size(), written.size());
  for (const auto& [txid, ack] : acks) EXPECT_EQ(ack, "OK") << txid;
  EXPECT_EQ(world.client().batches_sent(), 2);
  EXPECT_EQ(world.BatchLinesAt(0, 4), 1);
  EXPECT_EQ(world.Rows(0), "0,1,2,3");
  EXPECT_TRUE(world.node(0).PreparedTxids().empty());
  EXPECT_EQ(world.node(0).lock_count(), 0u);
}

TEST(SimParticipantTransportTest, AgentWithoutBatchGetsTheQueuedCallsOneByOne) {
  World world(/*seed=*/2, /*participants=*/1, OneSlot(), /*knows_batch=*/false);
  std::vector<std::string> txids;
  for (int id = 0; id < 4; ++id) txids.push_back(world.Write(id, {0}));
  std::map<std::string, std::string> votes = world.PrepareAll(txids);
  ASSERT_EQ(votes.size(), txids.size());
  for (const std::string& txid : txids) EXPECT_EQ(votes[txid], "YES") << txid;
  EXPECT_EQ(world.client().batches_sent(), 1) << "tried once, then single calls";
  EXPECT_EQ(world.counting().failed, 1);
  for (size_t n = 1; n <= txids.size(); ++n) EXPECT_EQ(world.BatchLinesAt(0, n), 0);
}

TEST(SimParticipantTransportTest, ParticipantThatIsDownFailsEveryEntryOfTheBatch) {
  World world(/*seed=*/3, /*participants=*/1, OneSlot());
  std::vector<std::string> txids;
  for (int id = 0; id < 4; ++id) txids.push_back(world.Write(id, {0}));
  world.node(0).Crash();
  std::map<std::string, std::string> votes = world.PrepareAll(txids);
  ASSERT_EQ(votes.size(), txids.size());
  for (const std::string& txid : txids) EXPECT_EQ(votes[txid], "UNAVAILABLE") << txid;
  EXPECT_EQ(world.client().batches_sent(), 1);
  EXPECT_EQ(world.counting().failed, 1);
}

// One seed of the fault test: `kTransactions` transactions over two
// participants; every branch prepared (failures retried) then the even ones
// committed and the odd ones aborted (failures retried), all through the
// batching client while messages are lost, duplicated and held back.
struct FaultRun {
  int batches_answered = 0;
  int batches_failed = 0;
  int64_t batched_entries = 0;
  int failed_calls = 0;  // answered with an error, then retried
};

FaultRun RunWithFaults(uint64_t seed) {
  constexpr int kTransactions = 40;
  constexpr int kParticipants = 2;
  FaultRun run;
  World world(seed, kParticipants, BatchingOptions{});
  std::vector<std::string> txids;
  // Every fourth transaction never reaches p1, whose branch then votes NO
  // (ABORTED): batches mix answers, so an answer given to the wrong entry
  // shows. Those transactions are odd, so aborted below.
  auto reaches = [](int tx, int p) { return p == 0 || tx % 4 != 3; };
  for (int id = 0; id < kTransactions; ++id) {
    txids.push_back(world.Write(id, reaches(id, 1) ? std::vector<int>{0, 1} : std::vector<int>{0}));
  }

  NetworkFaults faults;
  faults.loss = 0.05;
  faults.duplicate = 0.2;
  faults.slow = 0.1;
  faults.slow_max = absl::Milliseconds(800);
  world.net().set_faults(faults);

  // A round sends one call per branch still to do, each at a random moment
  // of its first 20ms (so that batches of every size form), and waits for
  // every answer; each call must be answered exactly once, and what is not
  // a failure must be the right answer. What failed is the next round's.
  struct Branch {
    int tx;
    int p;
  };
  struct Round {
    std::vector<int> answers;  // per call
    size_t answered = 0;
    std::vector<Branch> failed;
  };
  auto round = [&](const std::vector<Branch>& todo, bool prepare) {
    auto state = std::make_shared<Round>();
    state->answers.resize(todo.size());
    for (size_t i = 0; i < todo.size(); ++i) {
      const Branch b = todo[i];
      const std::string txid = txids[b.tx];
      // A call failed (to be retried) or got its final answer, which must
      // be `expected`.
      const std::string expected =
          !prepare || reaches(b.tx, b.p) ? (prepare ? "YES" : "OK") : "ABORTED";
      auto record = [state, i, b, txid, expected](const std::string& result) {
        ++state->answered;
        EXPECT_EQ(++state->answers[i], 1) << txid << " at p" << b.p << " answered twice";
        if (result == "DEADLINE_EXCEEDED" || result == "UNAVAILABLE") {
          state->failed.push_back(b);
          return;
        }
        EXPECT_EQ(result, expected) << txid << " at p" << b.p;
      };
      auto send = [&world, prepare, b, txid, record] {
        if (prepare) {
          world.client().Prepare(world.Branch(b.p), txid, kCallTimeout,
                                 [record](absl::StatusOr<Vote> vote) { record(VoteText(vote)); });
        } else if (b.tx % 2 == 0) {
          world.client().Commit(world.Branch(b.p), txid, kCallTimeout,
                                [record](absl::Status s) { record(StatusText(s)); });
        } else {
          world.client().Abort(world.Branch(b.p), txid, kCallTimeout,
                               [record](absl::Status s) { record(StatusText(s)); });
        }
      };
      world.loop().After(world.loop().UniformDuration(absl::ZeroDuration(), absl::Milliseconds(20)),
                         send);
    }
    world.RunUntil([&] { return state->answered == todo.size(); });
    EXPECT_EQ(state->answered, todo.size()) << "a call was never answered";
    run.failed_calls += static_cast<int>(state->failed.size());
    return state->failed;
  };

  std::vector<Branch> all;
  for (int tx = 0; tx < kTransactions; ++tx) {
    for (int p = 0; p < kParticipants; ++p) all.push_back(Branch{tx, p});
  }
  for (bool prepare : {true, false}) {
    std::vector<Branch> todo = all;
    for (int attempt = 0; !todo.empty() && attempt < 30; ++attempt) todo = round(todo, prepare);
    EXPECT_TRUE(todo.empty()) << todo.size() << " branches never got through";
  }

  // Let stragglers (late and duplicated requests) land before looking.
  const absl::Time quiet = world.loop().now() + absl::Seconds(5);
  world.RunUntil([&] { return world.loop().now() >= quiet; });
  std::string even;
  for (int id = 0; id < kTransactions; id += 2) absl::StrAppend(&even, even.empty() ? "" : ",", id);
  for (int p = 0; p < kParticipants; ++p) {
    EXPECT_EQ(world.Rows(p), even) << "p" << p << ", seed " << seed;
    EXPECT_TRUE(world.node(p).PreparedTxids().empty()) << "p" << p << ", seed " << seed;
    EXPECT_EQ(world.node(p).lock_count(), 0u) << "p" << p << ", seed " << seed;
  }
  run.batches_answered = world.counting().answered;
  run.batches_failed = world.counting().failed;
  run.batched_entries = world.client().batched_entries();
  return run;
}

TEST(SimParticipantTransportTest,
     UnderLostDuplicatedAndLateMessagesEveryCallIsAnsweredOnceAndRight) {
  FaultRun total;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    const FaultRun run = RunWithFaults(seed);
    if (::testing::Test::HasFailure()) break;
    total.batches_answered += run.batches_answered;
    total.batches_failed += run.batches_failed;
    total.batched_entries += run.batched_entries;
    total.failed_calls += run.failed_calls;
  }
  // The faults must have hit batches, and batches must have got through.
  EXPECT_GT(total.batches_answered, 0);
  EXPECT_GT(total.batches_failed, 0);
  EXPECT_GT(total.failed_calls, 0);
  std::cout << "20 seeds: " << total.batches_answered << " batches answered, "
            << total.batches_failed << " lost or late, " << total.batched_entries
            << " entries batched, " << total.failed_calls << " calls failed and retried\n";
}

}  // namespace
}  // namespace txcoord::sim
