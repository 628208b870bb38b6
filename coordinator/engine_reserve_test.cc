// Txids reserved in blocks (Engine::Reserve): no transaction exists until
// a txid's first Enlist or Commit, none begins twice, and what is not used
// in time stays unknown (presumed abort).
#include <string>
#include <vector>

#include "coordinator/engine.h"
#include "coordinator/engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

using ::testing::HasSubstr;
using testing::kT0;
using testing::Only;

class EngineReserveTest : public ::testing::Test {
 protected:
  static EngineOptions Options() {
    EngineOptions options = testing::TestEngineOptions();
    options.reservation_ttl = absl::Seconds(10);
    options.max_reserved_txids = 8;
    options.finished_cache = 0;  // a finished transaction is forgotten at once
    return options;
  }

  absl::Status Enlist(const std::string& txid, absl::Time at, Actions* out = nullptr) {
    Actions ignored;
    return engine_.Enlist(txid, {"p", "host-p:1", 11}, true, at, out != nullptr ? out : &ignored);
  }

  // The decision a Commit of `txid` naming no branch emits.
  Decided CommitNow(const std::string& txid, absl::Time at) {
    Actions out;
    EXPECT_TRUE(engine_.Commit(txid, at, &out).ok());
    std::vector<Decided> decided = Only<Decided>(out);
    EXPECT_EQ(decided.size(), 1u);
    return decided.empty() ? Decided{} : decided[0];
  }

  Engine engine_{Options()};
};

TEST_F(EngineReserveTest, ReservedTxidBeginsAtItsFirstEnlistWithTheReservationsTimeout) {
  absl::StatusOr<ReserveResult> block = engine_.Reserve(4, absl::Seconds(20), kT0);
  ASSERT_TRUE(block.ok()) << block.status();
  EXPECT_EQ(block->cluster, "c1");
  EXPECT_EQ(block->epoch, 7u);
  EXPECT_EQ(block->first_sequence, 1u);
  EXPECT_EQ(block->count, 4u);
  EXPECT_EQ(block->valid_for, absl::Seconds(10));
  // Begin issues past the block.
  Actions out;
  EXPECT_EQ(engine_.Begin(absl::ZeroDuration(), kT0, &out)->txid, "c1.7.5");

  // Not begun, but undecided: it may still begin.
  absl::StatusOr<TransactionView> unused = engine_.Describe("c1.7.2", kT0);
  ASSERT_TRUE(unused.ok()) << unused.status();
  EXPECT_EQ(unused->state, TxState::kActive);
  EXPECT_TRUE(unused->branches.empty());
  EXPECT_THAT(unused->reason, HasSubstr("reserved, not begun yet"));
  EXPECT_EQ(engine_.open_transactions(), 1u);
  out.clear();
  ASSERT_TRUE(Enlist("c1.7.2", kT0 + absl::Seconds(3), &out).ok());
  std::vector<ArmTimer> timers = Only<ArmTimer>(out);
  ASSERT_EQ(timers.size(), 1u);
  EXPECT_EQ(timers[0].timer.txid, "c1.7.2");
  EXPECT_EQ(timers[0].at, kT0 + absl::Seconds(23));  // the timeout counts from the first use
  absl::StatusOr<TransactionView> view = engine_.Describe("c1.7.2");
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state, TxState::kActive);
  EXPECT_EQ(view->begin, kT0 + absl::Seconds(3));
  ASSERT_EQ(view->branches.size(), 1u);
  EXPECT_EQ(view->branches[0].vote, Vote::kYes);

  // A second Enlist joins the same transaction; it does not begin again.
  out.clear();
  ASSERT_TRUE(engine_.Enlist("c1.7.2", {"q", "host-q:1", 12}, true, kT0, &out).ok());
  EXPECT_TRUE(Only<ArmTimer>(out).empty());
  EngineStats stats = engine_.Stats(kT0);
  EXPECT_EQ(stats.txids_reserved, 4u);
  EXPECT_EQ(stats.reserved_begun, 1u);
  EXPECT_EQ(stats.reserved_outstanding, 3u);
}

TEST_F(EngineReserveTest, DefaultTimeoutIsReadWhenTheTxidBegins) {
  ASSERT_TRUE(engine_.Reserve(1, absl::ZeroDuration(), kT0).ok());
  EnginePolicy policy = engine_.policy();
  policy.default_tx_timeout = absl::Seconds(7);
  ASSERT_TRUE(engine_.SetPolicy(policy).ok());
  Actions out;
  ASSERT_TRUE(Enlist("c1.7.1", kT0 + absl::Seconds(1), &out).ok());
  ASSERT_EQ(Only<ArmTimer>(out).size(), 1u);
  EXPECT_EQ(Only<ArmTimer>(out)[0].at, kT0 + absl::Seconds(8));
}

TEST_F(EngineReserveTest, CommitAsFirstUseBeginsTheTransactionAndAwaitsTheNamedBranch) {
  ASSERT_TRUE(engine_.Reserve(2, absl::ZeroDuration(), kT0).ok());
  Actions out;
  ASSERT_TRUE(engine_.Commit("c1.7.1", {{"p", "", 11}}, kT0, &out).ok());
  EXPECT_TRUE(Only<Decided>(out).empty());  // waits for the named branch's Enlist
  absl::StatusOr<TransactionView> view = engine_.Describe("c1.7.1");
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->state, TxState::kPreparing);
  ASSERT_EQ(view->branches.size(), 1u);
  EXPECT_TRUE(view->branches[0].awaited);

  // The early-prepared branch's Enlist arrives after the Commit: its vote
  // decides, and the COMMIT record is logged.
  out.clear();
  ASSERT_TRUE(Enlist("c1.7.1", kT0, &out).ok());
  EXPECT_EQ(Only<LogCommit>(out).size(), 1u);

  // An empty transaction committed by its first use.
  Decided empty = CommitNow("c1.7.2", kT0);
  EXPECT_TRUE(empty.committed);
}

TEST_F(EngineReserveTest, UsedTxidNeverBeginsAgainOnceForgotten) {
  ASSERT_TRUE(engine_.Reserve(3, absl::ZeroDuration(), kT0).ok());
  // Began by an Enlist, then aborted by the client: forgotten at once
  // (no finished cache), while its reservation still lives.
  ASSERT_TRUE(Enlist("c1.7.1", kT0).ok());
  Actions out;
  ASSERT_TRUE(engine_.Abort("c1.7.1", "client gave up", kT0, &out).ok());
  absl::StatusOr<TransactionView> gone = engine_.Describe("c1.7.1");
  ASSERT_TRUE(gone.ok()) << gone.status();
  ASSERT_EQ(gone->reason, kPresumedAbort);  // only the retained outcomes answer
  // A late Enlist and a Commit must not start it anew: a Commit retried
  // after the abort would otherwise commit the late branch alone.
  absl::Status late = Enlist("c1.7.1", kT0 + absl::Seconds(1));
  EXPECT_EQ(late.code(), absl::StatusCode::kNotFound) << late;
  Decided retried = CommitNow("c1.7.1", kT0 + absl::Seconds(1));
  EXPECT_FALSE(retried.committed);
  EXPECT_EQ(retried.reason, kPresumedAbort);
  EXPECT_EQ(engine_.open_transactions(), 0u);
}

TEST_F(EngineReserveTest, AbortOrQueryOutcomeFirstUsesTheTxidUp) {
  ASSERT_TRUE(engine_.Reserve(2, absl::ZeroDuration(), kT0).ok());
  Actions out;
  EXPECT_TRUE(engine_.Abort("c1.7.1", "client gave up", kT0, &out).ok());
  EXPECT_EQ(engine_.QueryOutcome("c1.7.2", "p").value(), Outcome::kAborted);
  for (const std::string txid : {"c1.7.1", "c1.7.2"}) {
    EXPECT_EQ(Enlist(txid, kT0).code(), absl::StatusCode::kNotFound) << txid;
    Decided decided = CommitNow(txid, kT0);
    EXPECT_FALSE(decided.committed) << txid;
  }
  EngineStats stats = engine_.Stats(kT0);
  EXPECT_EQ(stats.reserved_begun, 0u);
  EXPECT_EQ(stats.reserved_unused, 2u);
  EXPECT_EQ(stats.reserved_outstanding, 0u);
}

TEST_F(EngineReserveTest, TxidFirstUsedAfterItsReservationExpiredIsUnknown) {
  ASSERT_TRUE(engine_.Reserve(2, absl::ZeroDuration(), kT0).ok());
  ASSERT_TRUE(Enlist("c1.7.1", kT0 + absl::Seconds(9)).ok());
  // Expired: presumed aborted, as it can no longer begin.
  absl::StatusOr<TransactionView> expired = engine_.Describe("c1.7.2", kT0 + absl::Seconds(10));
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->state, TxState::kAborted);
  EXPECT_EQ(expired->reason, kPresumedAbort);
  absl::Status late = Enlist("c1.7.2", kT0 + absl::Seconds(10));
  EXPECT_EQ(late.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(late.message()), HasSubstr("reserved and not used in time"));
  EXPECT_FALSE(CommitNow("c1.7.2", kT0 + absl::Seconds(10)).committed);
  EXPECT_EQ(engine_.Stats(kT0).reserved_unused, 1u);
}

TEST_F(EngineReserveTest, DroppedReservationsNoLongerBegin) {
  ASSERT_TRUE(engine_.Reserve(3, absl::ZeroDuration(), kT0).ok());
  ASSERT_TRUE(Enlist("c1.7.1", kT0).ok());
  engine_.DropReservations();
  EXPECT_EQ(Enlist("c1.7.2", kT0).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Enlist("c1.7.1", kT0).ok());  // begun before: unaffected
  EngineStats stats = engine_.Stats(kT0);
  EXPECT_EQ(stats.reserved_unused, 2u);
  EXPECT_EQ(stats.reserved_outstanding, 0u);
}

TEST_F(EngineReserveTest, AnOperatorsAbortUsesAReservedTxidUp) {
  ASSERT_TRUE(engine_.Reserve(2, absl::ZeroDuration(), kT0).ok());
  Actions out;
  EXPECT_TRUE(engine_.ForceAbort("c1.7.1", "operator", kT0, &out).ok());
  EXPECT_EQ(Enlist("c1.7.1", kT0).code(), absl::StatusCode::kNotFound);
  // A txid never reserved nor begun is still the operator's typo.
  EXPECT_EQ(engine_.ForceAbort("c1.7.9", "operator", kT0, &out).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EngineReserveTest, AFullTableRefusesOnlyTxidsThatWouldBegin) {
  EngineOptions options = Options();
  options.max_open_transactions = 1;
  Engine engine(options);
  ASSERT_TRUE(engine.Reserve(2, absl::ZeroDuration(), kT0).ok());
  Actions out;
  ASSERT_TRUE(engine.Enlist("c1.7.1", {"p", "host-p:1", 11}, true, kT0, &out).ok());
  EXPECT_EQ(engine.Enlist("c1.7.2", {"p", "host-p:1", 11}, true, kT0, &out).code(),
            absl::StatusCode::kResourceExhausted);
  // Left unused: it begins once there is room.
  ASSERT_TRUE(engine.Abort("c1.7.1", "done", kT0, &out).ok());
  EXPECT_TRUE(engine.Enlist("c1.7.2", {"p", "host-p:1", 11}, true, kT0, &out).ok());
  // A txid that would not begin gets its own answer, not the full table's.
  EXPECT_EQ(engine.Enlist("c1.7.9", {"p", "host-p:1", 11}, true, kT0, &out).code(),
            absl::StatusCode::kNotFound);
  out.clear();
  ASSERT_TRUE(engine.Commit("c1.7.1", kT0, &out).ok());
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_FALSE(Only<Decided>(out)[0].committed);
}

TEST_F(EngineReserveTest, ALiveReservationHoldsBackTheRetentionWindow) {
  EngineOptions options = Options();
  options.retention.retention = absl::Seconds(1);
  options.max_reserved_txids = 1 << 20;
  Engine engine(options);
  // Past the first chunk of retained outcomes (16,384 sequences).
  for (int i = 0; i < 17; ++i) ASSERT_TRUE(engine.Reserve(1024, absl::ZeroDuration(), kT0).ok());
  Actions out;
  ASSERT_TRUE(engine.Commit("c1.7.1", kT0, &out).ok());  // commits (no branches) and ends
  // Past the window, and no transaction open in the first chunk; but its
  // reserved txids may still begin, so it stays.
  ASSERT_TRUE(engine.Begin(absl::ZeroDuration(), kT0 + absl::Seconds(5), &out).ok());
  EXPECT_EQ(engine.Stats(kT0).retained_chunks_dropped, 0u);
  out.clear();
  ASSERT_TRUE(engine.Commit("c1.7.1", kT0 + absl::Seconds(5), &out).ok());
  ASSERT_EQ(Only<Decided>(out).size(), 1u);
  EXPECT_TRUE(Only<Decided>(out)[0].committed);
  // Once the reservations expired, the window applies.
  ASSERT_TRUE(engine.Begin(absl::ZeroDuration(), kT0 + absl::Seconds(20), &out).ok());
  EXPECT_EQ(engine.Stats(kT0).retained_chunks_dropped, 1u);
}

TEST_F(EngineReserveTest, ReservationsAreBounded) {
  EXPECT_EQ(engine_.Reserve(0, absl::ZeroDuration(), kT0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_.Reserve(kMaxReservedTxids + 1, absl::ZeroDuration(), kT0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_.Reserve(1, absl::Hours(2), kT0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine_.Reserve(8, absl::ZeroDuration(), kT0).ok());
  absl::StatusOr<ReserveResult> over = engine_.Reserve(1, absl::ZeroDuration(), kT0);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  // Using one frees its room; so does expiry.
  ASSERT_TRUE(Enlist("c1.7.1", kT0).ok());
  EXPECT_TRUE(engine_.Reserve(1, absl::ZeroDuration(), kT0).ok());
  EXPECT_EQ(engine_.Reserve(1, absl::ZeroDuration(), kT0).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(engine_.Reserve(8, absl::ZeroDuration(), kT0 + absl::Seconds(10)).ok());
  // A sequence never reserved nor begun stays "never begun".
  EXPECT_EQ(Enlist("c1.7.99", kT0 + absl::Seconds(10)).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace txcoord::coordinator
