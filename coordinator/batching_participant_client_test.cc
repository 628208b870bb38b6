// BatchingParticipantClient over a fake transport that holds every call
// until the test answers it, on a fake clock: when calls queue, what a
// batch carries, whose callback gets which answer, the single-call window
// after UNIMPLEMENTED, deadlines of queued calls, and failures of a whole
// batch. One thread, no sleeps: every step is the test's.
#include "coordinator/batching_participant_client.h"

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

class FakeClock final : public Clock {
 public:
  absl::Time Now() override { return now; }
  absl::Time now = absl::FromUnixSeconds(1700000000);
};

// Records every call and keeps its callback until the test answers it.
// With `fail_at_once`, answers every call UNAVAILABLE before returning.
class FakeTransport final : public ParticipantTransport {
 public:
  struct Sent {
    std::string method;
    std::string endpoint;
    std::vector<BatchEntry> entries;  // one for a single call
    absl::Duration timeout;
    std::function<void(absl::StatusOr<Vote>)> voted;
    std::function<void(absl::Status)> done;
    std::function<void(absl::StatusOr<bool>)> one_phase;
    std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> batch;
  };

  void Prepare(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
               absl::Duration timeout, std::function<void(absl::StatusOr<Vote>)> done) override {
    if (fail_at_once) return done(absl::UnavailableError("refused"));
    Sent& s = Add("Prepare", endpoint, {{BranchOp::kPrepare, txid, branch_token}}, timeout);
    s.voted = std::move(done);
  }
  void Commit(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override {
    if (fail_at_once) return done(absl::UnavailableError("refused"));
    Add("Commit", endpoint, {{BranchOp::kCommit, txid}}, timeout).done = std::move(done);
  }
  void Abort(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override {
    if (fail_at_once) return done(absl::UnavailableError("refused"));
    Add("Abort", endpoint, {{BranchOp::kAbort, txid}}, timeout).done = std::move(done);
  }
  void CommitOnePhase(const std::string& endpoint, const std::string& txid, uint64_t branch_token,
                      absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override {
    if (fail_at_once) return done(absl::UnavailableError("refused"));
    Add("CommitOnePhase", endpoint, {{BranchOp::kCommit, txid, branch_token}}, timeout).one_phase =
        std::move(done);
  }
  void Batch(const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
             std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) override {
    if (fail_at_once) return done(absl::UnavailableError("refused"));
    Add("Batch", endpoint, std::move(entries), timeout).batch = std::move(done);
  }
  int max_batch_entries() const override { return max_entries; }

  // Every call so far, in order: "Prepare t1" or "Batch Commit t2, Abort t3".
  std::vector<std::string> Calls() const {
    std::vector<std::string> out;
    for (const Sent& s : sent) {
      std::vector<std::string> entries;
      for (const BatchEntry& e : s.entries) {
        entries.push_back(s.method == "Batch" ? absl::StrCat(BranchOpName(e.op), " ", e.txid)
                                              : e.txid);
      }
      out.push_back(absl::StrCat(s.method, " ", absl::StrJoin(entries, ", ")));
    }
    return out;
  }

  // Answer call `i` (each exactly once; the test asserts the kind fits).
  void AnswerVote(size_t i, absl::StatusOr<Vote> vote) {
    auto voted = Take(&sent.at(i).voted);
    voted(std::move(vote));
  }
  void AnswerStatus(size_t i, absl::Status status) {
    auto done = Take(&sent.at(i).done);
    done(std::move(status));
  }
  void AnswerOnePhase(size_t i, absl::StatusOr<bool> outcome) {
    auto one_phase = Take(&sent.at(i).one_phase);
    one_phase(std::move(outcome));
  }
  void AnswerBatch(size_t i, absl::StatusOr<std::vector<BatchAnswer>> answers) {
    auto batch = Take(&sent.at(i).batch);
    batch(std::move(answers));
  }

  std::deque<Sent> sent;  // a deque: answering a call may send more
  int max_entries = 1000;
  bool fail_at_once = false;

 private:
  Sent& Add(const char* method, const std::string& endpoint, std::vector<BatchEntry> entries,
            absl::Duration timeout) {
    sent.push_back(Sent{method, endpoint, std::move(entries), timeout});
    return sent.back();
  }
  // The callback, which must be there and is gone afterwards.
  template <typename Fn>
  static Fn Take(Fn* fn) {
    EXPECT_TRUE(*fn != nullptr) << "no such call, or answered twice";
    Fn out = std::move(*fn);
    *fn = nullptr;
    if (!out) return [](auto&&...) {};
    return out;
  }
};

class BatchingParticipantClientTest : public ::testing::Test {
 protected:
  void Make(BatchingOptions options) {
    client_ = std::make_unique<BatchingParticipantClient>(&transport_, &clock_, options);
  }
  // max_in_flight 1: the second call to a participant already queues.
  void MakeOneSlot(absl::Duration singles_after_unimplemented = absl::Minutes(1)) {
    BatchingOptions options;
    options.max_in_flight = 1;
    options.singles_after_unimplemented = singles_after_unimplemented;
    Make(options);
  }

  BranchRef Branch(const std::string& endpoint = "p:1") { return BranchRef{"p", endpoint, 7}; }
  // Each call's answer lands in answers_[txid] as "YES", "READ_ONLY", "OK"
  // or the status; a second answer to the same txid is a failure.
  void Prepare(const std::string& txid, absl::Duration timeout = kTimeout,
               const std::string& endpoint = "p:1") {
    client_->Prepare(Branch(endpoint), txid, timeout, [this, txid](absl::StatusOr<Vote> vote) {
      Record(txid, !vote.ok()                 ? vote.status().ToString()
                   : *vote == Vote::kYes      ? "YES"
                   : *vote == Vote::kReadOnly ? "READ_ONLY"
                                              : "another vote");
    });
  }
  void Commit(const std::string& txid, absl::Duration timeout = kTimeout) {
    client_->Commit(Branch(), txid, timeout,
                    [this, txid](absl::Status status) { Record(txid, StatusText(status)); });
  }
  void Abort(const std::string& txid, absl::Duration timeout = kTimeout) {
    client_->Abort(Branch(), txid, timeout,
                   [this, txid](absl::Status status) { Record(txid, StatusText(status)); });
  }
  void Record(const std::string& txid, const std::string& answer) {
    EXPECT_TRUE(answers_.emplace(txid, answer).second) << txid << " answered twice";
  }
  static std::string StatusText(const absl::Status& status) {
    return status.ok() ? "OK" : status.ToString();
  }
  std::string AnswerOf(const std::string& txid) {
    auto it = answers_.find(txid);
    return it == answers_.end() ? "(no answer)" : it->second;
  }

  FakeClock clock_;
  FakeTransport transport_;
  std::unique_ptr<BatchingParticipantClient> client_;
  std::map<std::string, std::string> answers_;
};

TEST_F(BatchingParticipantClientTest, CallsQueueOnlyOnceMaxInFlightAreOut) {
  BatchingOptions options;
  options.max_in_flight = 2;
  Make(options);
  Prepare("t1");
  Prepare("t2");
  EXPECT_EQ(transport_.Calls(), (std::vector<std::string>{"Prepare t1", "Prepare t2"}));
  Prepare("t3");
  EXPECT_EQ(transport_.sent.size(), 2u) << "the third call waits for a slot";

  transport_.AnswerVote(0, Vote::kYes);
  EXPECT_EQ(AnswerOf("t1"), "YES");
  // A queue of one goes as a single call, in the slot t1 freed.
  EXPECT_EQ(transport_.Calls(),
            (std::vector<std::string>{"Prepare t1", "Prepare t2", "Prepare t3"}));
  transport_.AnswerVote(1, Vote::kYes);
  transport_.AnswerVote(2, Vote::kReadOnly);
  EXPECT_EQ(AnswerOf("t3"), "READ_ONLY");
  EXPECT_EQ(client_->batches_sent(), 0);

  // Every slot is free again: two more calls go at once.
  Prepare("t4");
  Prepare("t5");
  EXPECT_EQ(transport_.sent.size(), 5u);
}

TEST_F(BatchingParticipantClientTest, BatchCarriesTheQueueInOrderUpToMaxBatch) {
  BatchingOptions options;
  options.max_in_flight = 1;
  options.max_batch = 3;
  Make(options);
  Prepare("t0");
  Prepare("t1");
  Commit("t2");
  Abort("t3");
  Commit("t4");
  Prepare("t5");
  ASSERT_EQ(transport_.sent.size(), 1u);

  transport_.AnswerVote(0, Vote::kYes);
  ASSERT_EQ(transport_.Calls(),
            (std::vector<std::string>{"Prepare t0", "Batch Prepare t1, Commit t2, Abort t3"}));
  EXPECT_EQ(transport_.sent[1].entries[0].branch_token, 7u) << "a Prepare carries its token";

  transport_.AnswerBatch(
      1, std::vector<BatchAnswer>{
             {absl::OkStatus(), Vote::kYes}, {absl::OkStatus()}, {absl::OkStatus()}});
  ASSERT_EQ(transport_.Calls(),
            (std::vector<std::string>{"Prepare t0", "Batch Prepare t1, Commit t2, Abort t3",
                                      "Batch Commit t4, Prepare t5"}));
  EXPECT_EQ(client_->batches_sent(), 2);
  EXPECT_EQ(client_->batched_entries(), 5);
}

TEST_F(BatchingParticipantClientTest, EachBatchAnswerReachesItsOwnCaller) {
  MakeOneSlot();
  Prepare("t0");
  Prepare("yes");
  Prepare("read-only");
  Prepare("no");
  Prepare("no-vote");
  Commit("committed");
  Commit("refused");
  Abort("aborted");
  transport_.AnswerVote(0, Vote::kYes);
  ASSERT_EQ(transport_.sent.size(), 2u);
  ASSERT_EQ(transport_.sent[1].entries.size(), 7u);

  transport_.AnswerBatch(1, std::vector<BatchAnswer>{
                                {absl::OkStatus(), Vote::kYes},
                                {absl::OkStatus(), Vote::kReadOnly},
                                {absl::AbortedError("voted NO: unknown branch")},
                                {absl::OkStatus()},  // OK, and no vote
                                {absl::OkStatus()},
                                {absl::FailedPreconditionError("HEURISTIC_MIXED: refused")},
                                {absl::OkStatus()},
                            });
  EXPECT_EQ(AnswerOf("yes"), "YES");
  EXPECT_EQ(AnswerOf("read-only"), "READ_ONLY");
  EXPECT_EQ(AnswerOf("no"), "ABORTED: voted NO: unknown branch");
  EXPECT_EQ(AnswerOf("no-vote"), "INTERNAL: participant sent no vote");
  EXPECT_EQ(AnswerOf("committed"), "OK");
  EXPECT_EQ(AnswerOf("refused"), "FAILED_PRECONDITION: HEURISTIC_MIXED: refused");
  EXPECT_EQ(AnswerOf("aborted"), "OK");
}

TEST_F(BatchingParticipantClientTest, UnimplementedMeansSingleCallsForTheWindowThenBatchAgain) {
  MakeOneSlot(/*singles_after_unimplemented=*/absl::Minutes(1));
  Prepare("a0");
  Prepare("a1");
  Commit("a2");
  transport_.AnswerVote(0, Vote::kYes);
  ASSERT_EQ(transport_.Calls().back(), "Batch Prepare a1, Commit a2");

  // Nothing ran: the entries go again, one by one, all at once.
  transport_.AnswerBatch(1, absl::UnimplementedError("unknown method Batch"));
  ASSERT_EQ(transport_.Calls(),
            (std::vector<std::string>{"Prepare a0", "Batch Prepare a1, Commit a2", "Prepare a1",
                                      "Commit a2"}));
  EXPECT_EQ(answers_.count("a1"), 0u) << "UNIMPLEMENTED must not reach a caller";
  transport_.AnswerVote(2, Vote::kYes);
  transport_.AnswerStatus(3, absl::OkStatus());
  EXPECT_EQ(AnswerOf("a1"), "YES");
  EXPECT_EQ(AnswerOf("a2"), "OK");

  // Within the window a queue goes as single calls.
  clock_.now += absl::Seconds(59);
  Prepare("b0");
  Prepare("b1");
  Prepare("b2");
  transport_.AnswerVote(4, Vote::kYes);
  ASSERT_EQ(transport_.Calls().size(), 7u);
  EXPECT_EQ(transport_.Calls()[5], "Prepare b1");
  EXPECT_EQ(transport_.Calls()[6], "Prepare b2");
  transport_.AnswerVote(5, Vote::kYes);
  transport_.AnswerVote(6, Vote::kYes);

  // After it, Batch is tried again.
  clock_.now += absl::Seconds(2);
  Prepare("c0");
  Prepare("c1");
  Prepare("c2");
  transport_.AnswerVote(7, Vote::kYes);
  EXPECT_EQ(transport_.Calls().back(), "Batch Prepare c1, Prepare c2");
  EXPECT_EQ(client_->batches_sent(), 2);
}

TEST_F(BatchingParticipantClientTest, RefusedBatchGoesAsSinglesEvenWithAZeroWindow) {
  MakeOneSlot(/*singles_after_unimplemented=*/absl::ZeroDuration());
  Prepare("t0");
  Prepare("t1");
  Prepare("t2");
  transport_.AnswerVote(0, Vote::kYes);
  transport_.AnswerBatch(1, absl::UnimplementedError("unknown method Batch"));
  EXPECT_EQ(transport_.Calls(),
            (std::vector<std::string>{"Prepare t0", "Batch Prepare t1, Prepare t2", "Prepare t1",
                                      "Prepare t2"}));
  EXPECT_EQ(client_->batches_sent(), 1);
}

TEST_F(BatchingParticipantClientTest, TransportErrorFailsEveryEntryOfTheBatch) {
  MakeOneSlot();
  Prepare("t0");
  Prepare("t1");
  Commit("t2");
  Abort("t3");
  transport_.AnswerVote(0, Vote::kYes);
  transport_.AnswerBatch(1, absl::UnavailableError("connection refused"));
  for (const char* txid : {"t1", "t2", "t3"}) {
    EXPECT_EQ(AnswerOf(txid), "UNAVAILABLE: connection refused") << txid;
  }
  // The batch's slot is free again.
  Prepare("t4");
  EXPECT_EQ(transport_.Calls().back(), "Prepare t4");
}

TEST_F(BatchingParticipantClientTest, WrongNumberOfAnswersFailsEveryEntry) {
  MakeOneSlot();
  Prepare("t0");
  Prepare("t1");
  Commit("t2");
  transport_.AnswerVote(0, Vote::kYes);
  transport_.AnswerBatch(1, std::vector<BatchAnswer>{{absl::OkStatus(), Vote::kYes}});
  for (const char* txid : {"t1", "t2"}) {
    EXPECT_TRUE(absl::StartsWith(AnswerOf(txid), "INTERNAL: participant answered 1 of 2"))
        << txid << ": " << AnswerOf(txid);
  }
}

TEST_F(BatchingParticipantClientTest, QueuedCallPastItsDeadlineIsAnsweredUnsent) {
  MakeOneSlot();
  Prepare("t0");
  Abort("stale", absl::Seconds(1));
  Commit("fresh", absl::Seconds(10));
  clock_.now += absl::Seconds(2);
  transport_.AnswerVote(0, Vote::kYes);
  EXPECT_TRUE(absl::StartsWith(AnswerOf("stale"), "DEADLINE_EXCEEDED")) << AnswerOf("stale");
  ASSERT_EQ(transport_.Calls(), (std::vector<std::string>{"Prepare t0", "Commit fresh"}));
  EXPECT_EQ(transport_.sent[1].timeout, absl::Seconds(8)) << "what is left of its own time";
}

TEST_F(BatchingParticipantClientTest, BatchHasItsMostPatientEntrysTimeLeft) {
  MakeOneSlot();
  Prepare("t0");
  Abort("t1", absl::Seconds(1));
  Commit("t2", absl::Seconds(5));
  Abort("t3", absl::Seconds(2));
  clock_.now += absl::Milliseconds(500);
  transport_.AnswerVote(0, Vote::kYes);
  ASSERT_EQ(transport_.Calls().back(), "Batch Abort t1, Commit t2, Abort t3");
  EXPECT_EQ(transport_.sent[1].timeout, absl::Milliseconds(4500));
}

TEST_F(BatchingParticipantClientTest, CommitOnePhaseIsSentAtOnceEvenWithEverySlotTaken) {
  MakeOneSlot();
  Prepare("t0");
  absl::StatusOr<bool> outcome = absl::UnknownError("not answered");
  client_->CommitOnePhase(Branch(), "one", kTimeout,
                          [&outcome](absl::StatusOr<bool> o) { outcome = o; });
  ASSERT_EQ(transport_.Calls(), (std::vector<std::string>{"Prepare t0", "CommitOnePhase one"}));
  EXPECT_EQ(transport_.sent[1].entries[0].branch_token, 7u);
  transport_.AnswerOnePhase(1, true);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(*outcome);
  // It took no slot: the Prepare's queue is unaffected.
  Prepare("t1");
  EXPECT_EQ(transport_.sent.size(), 2u);
}

TEST_F(BatchingParticipantClientTest, EachParticipantHasItsOwnSlotsAndQueue) {
  MakeOneSlot();
  Prepare("p1", kTimeout, "p:1");
  Prepare("q1", kTimeout, "q:1");
  Prepare("p2", kTimeout, "p:1");
  ASSERT_EQ(transport_.Calls(), (std::vector<std::string>{"Prepare p1", "Prepare q1"}));
  EXPECT_EQ(transport_.sent[1].endpoint, "q:1");
  transport_.AnswerVote(1, Vote::kYes);
  EXPECT_EQ(transport_.sent.size(), 2u) << "q's answer does not send p's queue";
  transport_.AnswerVote(0, Vote::kYes);
  EXPECT_EQ(transport_.Calls().back(), "Prepare p2");
  EXPECT_EQ(transport_.sent.back().endpoint, "p:1");
}

TEST_F(BatchingParticipantClientTest, BatchSizeIsCappedByTheTransport) {
  transport_.max_entries = 2;
  BatchingOptions options;
  options.max_in_flight = 1;
  options.max_batch = 256;
  Make(options);
  for (int i = 0; i < 4; ++i) Prepare(absl::StrCat("t", i));
  transport_.AnswerVote(0, Vote::kYes);
  EXPECT_EQ(transport_.Calls().back(), "Batch Prepare t1, Prepare t2");
}

TEST_F(BatchingParticipantClientTest, CallsThatFailAtOnceAreAnsweredWithoutDeadlock) {
  transport_.fail_at_once = true;
  MakeOneSlot();
  Prepare("t0");
  Commit("t1");
  Abort("t2");
  for (const char* txid : {"t0", "t1", "t2"}) {
    EXPECT_EQ(AnswerOf(txid), "UNAVAILABLE: refused") << txid;
  }
}

}  // namespace
}  // namespace txcoord::coordinator
