// The engine's invariant checks (common/check.h): results of actions it
// never emitted, in an order its adapters never produce, stop the process;
// late and duplicate results, which the network does produce, are ignored.
#include <string>

#include "coordinator/engine.h"
#include "coordinator/engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

using ::testing::IsEmpty;
using testing::kT0;
using testing::Only;

class EngineInvariantsTest : public ::testing::Test {
 protected:
  EngineInvariantsTest() : engine_(Options()) {}

  static EngineOptions Options() {
    EngineOptions options;
    options.cluster_id = "c1";
    options.epoch = 7;
    return options;
  }

  // A transaction of `participants` whose Commit sent Prepare to each.
  std::string Preparing(const std::vector<std::string>& participants) {
    const std::string txid = testing::BeginWith(engine_, participants);
    Actions out;
    EXPECT_TRUE(engine_.Commit(txid, kT0, &out).ok());
    EXPECT_EQ(Only<SendPrepare>(out).size(), participants.size());
    return txid;
  }

  // As Preparing, then every branch votes YES: COMMIT is being logged.
  std::string Logging(const std::vector<std::string>& participants) {
    const std::string txid = Preparing(participants);
    Actions out;
    for (const std::string& p : participants)
      engine_.OnPrepareResult(txid, p, Vote::kYes, kT0, &out);
    EXPECT_EQ(Only<LogCommit>(out).size(), 1u);
    return txid;
  }

  Engine engine_;
};

using EngineInvariantsDeathTest = EngineInvariantsTest;

TEST_F(EngineInvariantsDeathTest, CommitLoggedThatWasNeverAppendedStopsTheProcess) {
  const std::string txid = testing::BeginWith(engine_, {"a", "b"});
  Actions out;
  EXPECT_DEATH(engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out),
               "Check failed: txn.logging .* COMMIT logged while ACTIVE, not being logged");
}

TEST_F(EngineInvariantsDeathTest, CommitLoggedTwiceStopsTheProcess) {
  const std::string txid = Logging({"a", "b"});
  Actions out;
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  EXPECT_DEATH(engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out),
               "COMMIT logged while COMMITTING, not being logged");
}

TEST_F(EngineInvariantsDeathTest, VoteFromABranchThatWasSentNoPrepareStopsTheProcess) {
  const std::string txid = testing::BeginWith(engine_, {"b"});
  Actions out;
  // "a" voted YES when it enlisted, so Commit asks only "b".
  ASSERT_TRUE(engine_.Enlist(txid, {"a", "host-a:1"}, /*prepared=*/true, kT0, &out).ok());
  ASSERT_TRUE(engine_.Commit(txid, kT0, &out).ok());
  ASSERT_EQ(Only<SendPrepare>(out).size(), 1u);
  EXPECT_DEATH(engine_.OnPrepareResult(txid, "a", Vote::kNo, kT0, &out),
               "prepare result from a, which was sent no Prepare");
}

TEST_F(EngineInvariantsDeathTest, PhaseTwoResultBeforeCommitIsDurableStopsTheProcess) {
  const std::string txid = Logging({"a", "b"});
  Actions out;
  EXPECT_DEATH(engine_.OnPhase2Result(txid, "a", absl::OkStatus(), kT0, &out),
               "phase-2 result from a while PREPARING");
}

TEST_F(EngineInvariantsTest, LatePrepareResultAfterAnAbortIsIgnored) {
  const std::string txid = Preparing({"a", "b"});
  Actions out;
  ASSERT_TRUE(engine_.Abort(txid, "client gave up", kT0, &out).ok());
  out.clear();
  engine_.OnPrepareResult(txid, "a", Vote::kYes, kT0, &out);
  EXPECT_THAT(out, IsEmpty());
}

TEST_F(EngineInvariantsTest, DuplicateVoteAndDuplicateAcknowledgementAreIgnored) {
  const std::string txid = Preparing({"a", "b"});
  Actions out;
  engine_.OnPrepareResult(txid, "a", Vote::kYes, kT0, &out);
  engine_.OnPrepareResult(txid, "a", Vote::kNo, kT0, &out);  // the first vote stands
  engine_.OnPrepareResult(txid, "b", Vote::kYes, kT0, &out);
  ASSERT_EQ(Only<LogCommit>(out).size(), 1u);
  out.clear();
  engine_.OnCommitLogged(txid, absl::OkStatus(), kT0, &out);
  // An operator's retry sent "a" a second Commit: both answers arrive.
  ASSERT_TRUE(engine_.RetryPhase2(txid, kT0, &out).ok());
  engine_.OnPhase2Result(txid, "a", absl::OkStatus(), kT0, &out);
  engine_.OnPhase2Result(txid, "a", absl::OkStatus(), kT0, &out);
  out.clear();
  engine_.OnPhase2Result(txid, "b", absl::OkStatus(), kT0, &out);
  EXPECT_EQ(Only<LogEnd>(out).size(), 1u);
}

}  // namespace
}  // namespace txcoord::coordinator
