#include "coordinator/ha/etcd_decision_log.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cluster/faulty_etcd_test_util.h"
#include "cluster/memory_etcd.h"
#include "common/fake_scheduler.h"
#include "coordinator/records.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator::ha {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

LogCommit Commit(const std::string& txid) {
  return LogCommit{
      txid, {BranchRef{"orders", "127.0.0.1:7101", 0}, BranchRef{"payments", "127.0.0.1:7102", 0}}};
}

class EtcdDecisionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<int64_t> lease = etcd_.GrantLease(absl::Seconds(60));
    ASSERT_TRUE(lease.ok());
    std::string holder;
    absl::StatusOr<std::optional<Ownership>> taken =
        TryTakeSpace(&etcd_, keys_, "this process", *lease, &holder);
    ASSERT_TRUE(taken.ok() && taken->has_value());
    ownership_ = **taken;
    Open();
  }

  // A log as a new owner opens it: recovery first.
  void Open() {
    log_.reset();
    recovered_ = std::make_unique<RecoveryState>();
    ASSERT_TRUE(LoadDecisions(&etcd_, keys_, recovered_.get()).ok());
    EtcdLogOptions options;
    options.keys = keys_;
    options.ownership = ownership_;
    log_ = std::make_unique<EtcdDecisionLog>(
        &etcd_, &scheduler_, options, *recovered_,
        [this](const absl::Status& s) { failures_.push_back(s); });
  }

  // Appends and returns where the result will be put.
  std::shared_ptr<std::optional<absl::Status>> Append(uint8_t type, std::string payload,
                                                      bool sync = true) {
    auto result = std::make_shared<std::optional<absl::Status>>();
    log_->Append(type, std::move(payload), sync, [result](absl::Status s) { *result = s; });
    return result;
  }

  // The log's keys, relative to its prefix.
  std::vector<std::string> Keys() {
    std::vector<std::string> keys;
    absl::StatusOr<cluster::RangeResult> read = etcd_.GetPrefix(keys_.log);
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok()) return keys;
    for (const cluster::KeyValue& kv : read->kvs) {
      keys.push_back(kv.key.substr(keys_.log.size()));
    }
    return keys;
  }

  FakeScheduler scheduler_;
  cluster::MemoryEtcd etcd_{&scheduler_};
  const SpaceKeys keys_ = SpaceKeys::For("/t", "c1");
  Ownership ownership_;
  std::unique_ptr<RecoveryState> recovered_;
  std::unique_ptr<EtcdDecisionLog> log_;
  std::vector<absl::Status> failures_;  // what on_failure was called with
};

TEST_F(EtcdDecisionLogTest, RecordsQueuedTogetherGoInOneFencedTransaction) {
  auto a = Append(kRecordCommit, EncodeCommit(Commit("c1.1.1")));
  auto b = Append(kRecordCommit, EncodeCommit(Commit("c1.1.2")));
  auto c = Append(kRecordOnePhase,
                  EncodeOnePhase(LogOnePhase{"c1.1.3", {"orders", "127.0.0.1:7101", 9}}));
  EXPECT_FALSE(a->has_value()) << "never answered inside Append";
  EXPECT_THAT(Keys(), IsEmpty());
  scheduler_.Advance(absl::ZeroDuration());
  ASSERT_TRUE(a->has_value() && b->has_value() && c->has_value());
  EXPECT_TRUE(a->value().ok() && b->value().ok() && c->value().ok());
  EXPECT_EQ(log_->transactions_written(), 1u);
  EXPECT_THAT(Keys(), ElementsAre("tx/c1.1.1/commit", "tx/c1.1.2/commit", "tx/c1.1.3/onephase"));
}

TEST_F(EtcdDecisionLogTest, ANewOwnerRecoversTheOpenTransactionsAndTheirMarks) {
  Append(kRecordCommit, EncodeCommit(Commit("c1.1.1")));
  Append(kRecordMarkDone, EncodeMarkDone(LogMarkDone{"c1.1.1", "payments", "fixed by hand"}));
  Append(kRecordOnePhase, EncodeOnePhase(LogOnePhase{"c1.1.2", {"orders", "127.0.0.1:7101", 9}}));
  scheduler_.Advance(absl::ZeroDuration());
  Open();
  ASSERT_EQ(recovered_->unfinished().size(), 1u);
  EXPECT_EQ(recovered_->unfinished().at("c1.1.1").branches.size(), 2u);
  ASSERT_EQ(recovered_->marks("c1.1.1").size(), 1u);
  EXPECT_EQ(recovered_->marks("c1.1.1")[0].note, "fixed by hand");
  ASSERT_EQ(recovered_->one_phase().size(), 1u);
  EXPECT_EQ(recovered_->one_phase().at("c1.1.2").branch.token, 9u);
}

TEST_F(EtcdDecisionLogTest, EndDeletesATransactionsKeysAndKeepsItsOutcome) {
  Append(kRecordCommit, EncodeCommit(Commit("c1.1.1")));
  Append(kRecordMarkDone, EncodeMarkDone(LogMarkDone{"c1.1.1", "payments", ""}));
  Append(kRecordOnePhase, EncodeOnePhase(LogOnePhase{"c1.1.2", {"orders", "127.0.0.1:7101", 9}}));
  scheduler_.Advance(absl::ZeroDuration());
  // END is not forced: it waits a little for company, then goes.
  auto ended = Append(kRecordEnd, EncodeEnd(LogEnd{"c1.1.1", false}), /*sync=*/false);
  Append(kRecordEnd, EncodeEnd(LogEnd{"c1.1.2", false}), /*sync=*/false);  // one-phase, aborted
  Append(kRecordEnd, EncodeEnd(LogEnd{"c1.1.3", true}), /*sync=*/false);   // read-only commit
  scheduler_.Advance(absl::ZeroDuration());
  EXPECT_FALSE(ended->has_value());
  scheduler_.Advance(absl::Milliseconds(5));
  ASSERT_TRUE(ended->has_value() && ended->value().ok());
  EXPECT_THAT(Keys(), ElementsAre("retained/00000000000000000001/00000000000000000000"));

  Open();
  EXPECT_THAT(recovered_->unfinished(), IsEmpty());
  EXPECT_THAT(recovered_->one_phase(), IsEmpty());
  const RetainedOutcomes& outcomes = recovered_->outcomes();
  EXPECT_EQ(outcomes.Find(1, 1), RetainedOutcome::kCommitted);
  EXPECT_EQ(outcomes.Find(1, 2), RetainedOutcome::kNotCommitted);
  EXPECT_EQ(outcomes.Find(1, 3), RetainedOutcome::kCommitted);
}

TEST_F(EtcdDecisionLogTest, AWriteAfterAnotherProcessTookTheSpaceIsRefusedAndFailsTheLog) {
  ASSERT_EQ(*etcd_.Delete(keys_.owner), 1);  // as when the lease expires
  ASSERT_TRUE(etcd_.Put(keys_.owner, "a standby").ok());
  auto commit = Append(kRecordCommit, EncodeCommit(Commit("c1.1.1")));
  scheduler_.Advance(absl::ZeroDuration());
  ASSERT_TRUE(commit->has_value());
  EXPECT_EQ(commit->value().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(commit->value().message(), HasSubstr("etcd refused a write fenced on"));
  EXPECT_THAT(Keys(), IsEmpty());
  EXPECT_FALSE(log_->health().ok());
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_EQ(failures_[0].code(), absl::StatusCode::kFailedPrecondition);

  auto later = Append(kRecordCommit, EncodeCommit(Commit("c1.1.2")));
  scheduler_.Advance(absl::ZeroDuration());
  ASSERT_TRUE(later->has_value());
  EXPECT_EQ(later->value().code(), absl::StatusCode::kFailedPrecondition) << "fail-stop";
  EXPECT_EQ(failures_.size(), 1u);
}

// etcd past its space quota takes no puts until an operator disarms the
// alarm. Sending again cannot cure that: the log fails and says so, so that
// the process stops instead of holding the space with a log that takes
// nothing.
TEST_F(EtcdDecisionLogTest, AWriteEtcdRefusesForGoodFailsTheLogAndSaysSo) {
  etcd_.SetSpaceExceeded(true);
  auto commit = Append(kRecordCommit, EncodeCommit(Commit("c1.1.1")));
  scheduler_.Advance(absl::ZeroDuration());
  ASSERT_TRUE(commit->has_value());
  EXPECT_EQ(commit->value().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(log_->health().code(), absl::StatusCode::kResourceExhausted);
  ASSERT_EQ(failures_.size(), 1u);
  EXPECT_EQ(failures_[0].code(), absl::StatusCode::kResourceExhausted);

  etcd_.SetSpaceExceeded(false);
  auto later = Append(kRecordCommit, EncodeCommit(Commit("c1.1.2")));
  scheduler_.Advance(absl::ZeroDuration());
  ASSERT_TRUE(later->has_value());
  EXPECT_EQ(later->value().code(), absl::StatusCode::kResourceExhausted) << "fail-stop";
  EXPECT_THAT(Keys(), IsEmpty());
  EXPECT_EQ(failures_.size(), 1u);
}

TEST_F(EtcdDecisionLogTest, AWriteEtcdDidNotAnswerIsSentAgainUntilItIs) {
  etcd_.SetAvailable(false);
  auto commit = Append(kRecordCommit, EncodeCommit(Commit("c1.1.1")));
  for (int i = 0; i < 20; ++i) scheduler_.Advance(absl::Milliseconds(100));
  EXPECT_FALSE(commit->has_value()) << "not durable, not failed: waiting";
  etcd_.SetAvailable(true);
  scheduler_.Advance(absl::Seconds(1));
  ASSERT_TRUE(commit->has_value());
  EXPECT_TRUE(commit->value().ok());
  EXPECT_THAT(Keys(), ElementsAre("tx/c1.1.1/commit"));
}

TEST_F(EtcdDecisionLogTest, AppendsDuringAnOutageWaitForTheRetryInsteadOfHammeringEtcd) {
  cluster::testing::FaultyEtcd faulty(&etcd_);
  EtcdLogOptions options;
  options.keys = keys_;
  options.ownership = ownership_;
  log_ = std::make_unique<EtcdDecisionLog>(&faulty, &scheduler_, options, *recovered_, nullptr);
  etcd_.SetAvailable(false);
  std::vector<std::shared_ptr<std::optional<absl::Status>>> results;
  for (int i = 1; i <= 50; ++i) {
    results.push_back(Append(kRecordCommit, EncodeCommit(Commit(absl::StrCat("c1.1.", i)))));
    scheduler_.Advance(absl::Milliseconds(20));
  }
  // One write attempt per backoff step (20 ms doubling), not one per append.
  EXPECT_LE(faulty.calls.load(), 8);
  etcd_.SetAvailable(true);
  scheduler_.Advance(absl::Seconds(2));
  for (const auto& result : results) {
    ASSERT_TRUE(result->has_value());
    EXPECT_TRUE(result->value().ok());
  }
  EXPECT_EQ(Keys().size(), 50u);
}

TEST_F(EtcdDecisionLogTest, CloseWritesWhatIsQueued) {
  Append(kRecordCommit, EncodeCommit(Commit("c1.1.1")));
  scheduler_.Advance(absl::ZeroDuration());
  Append(kRecordEnd, EncodeEnd(LogEnd{"c1.1.1", false}), /*sync=*/false);
  log_->Close();
  EXPECT_THAT(Keys(), ElementsAre("retained/00000000000000000001/00000000000000000000"));
}

TEST_F(EtcdDecisionLogTest, AnUnknownKeyInTheLogIsDataLoss) {
  ASSERT_TRUE(etcd_.Put(keys_.log + "tx/c1.1.1/bogus", "x").ok());
  RecoveryState state;
  absl::Status loaded = LoadDecisions(&etcd_, keys_, &state);
  EXPECT_EQ(loaded.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.message(), HasSubstr("/t/spaces/c1/log/tx/c1.1.1/bogus"));
}

}  // namespace
}  // namespace txcoord::coordinator::ha
