// The exactly-once rules of the consumer's SQLite side, on a real file:
// what a batch commits, what it hands back, and what it only acknowledges.
#include "client/consumer_store.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace txcoord::consumer_internal {
namespace {

constexpr char kDurable[] = "ledger";
constexpr char kStream[] = "BANK";

class ConsumerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(::testing::TempDir(), "/consumer_store_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name(), "_",
                         getpid(), ".db");
    std::remove(path_.c_str());
    absl::StatusOr<std::unique_ptr<ConsumerStore>> store = ConsumerStore::Open(path_, true);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ASSERT_EQ(
        sqlite3_exec(store_->db(), "CREATE TABLE effects(id TEXT)", nullptr, nullptr, nullptr),
        SQLITE_OK);
  }

  static InboundMessage Message(const std::string& id, uint64_t seq, int deliveries = 1) {
    InboundMessage message;
    message.id = id;
    message.topic = "bank.transfers";
    message.stream_seq = seq;
    message.deliveries = deliveries;
    message.payload = "payload of " + id;
    return message;
  }

  absl::StatusOr<BatchResult> Apply(const std::vector<InboundMessage>& batch,
                                    int max_deliveries = 3) {
    std::vector<const InboundMessage*> pointers;
    for (const InboundMessage& message : batch) pointers.push_back(&message);
    return store_->ApplyBatch(kDurable, kStream, pointers, apply_, max_deliveries, absl::Now());
  }

  int64_t Count(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(store_->db(), sql.c_str(), -1, &stmt, nullptr), SQLITE_OK);
    int64_t value = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
    sqlite3_finalize(stmt);
    return value;
  }

  std::string path_;
  std::unique_ptr<ConsumerStore> store_;
  std::string failing_id_;  // apply_ fails for this message id
  ApplyFunction apply_ = [this](sqlite3* db, const InboundMessage& message) -> absl::Status {
    std::string sql = absl::StrCat("INSERT INTO effects VALUES('", message.id, "')");
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return absl::InternalError(sqlite3_errmsg(db));
    }
    if (message.id == failing_id_) return absl::FailedPreconditionError("refused");
    return absl::OkStatus();
  };
};

TEST_F(ConsumerStoreTest, AppliesABatchWithInboxRowsAndPosition) {
  absl::StatusOr<BatchResult> result = Apply({Message("a", 1), Message("b", 2), Message("c", 5)});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->applied, 3);
  EXPECT_EQ(result->position, 5u);
  EXPECT_EQ(result->dispositions, std::vector<Disposition>(3, Disposition::kAck));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM effects"), 3);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM _txcoord_inbox"), 3);
  EXPECT_EQ(*store_->Position(kDurable), 5u);
}

TEST_F(ConsumerStoreTest, KnownIdIsAckedNotAppliedAndAdvancesThePosition) {
  ASSERT_TRUE(Apply({Message("a", 1)}).ok());
  absl::StatusOr<BatchResult> result = Apply({Message("a", 7)});  // republished copy
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->duplicates, 1);
  EXPECT_EQ(result->applied, 0);
  EXPECT_EQ(result->dispositions[0], Disposition::kAck);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM effects"), 1);
  EXPECT_EQ(*store_->Position(kDurable), 7u);
}

TEST_F(ConsumerStoreTest, SequenceAtOrBelowPositionIsAckedWithoutApply) {
  ASSERT_TRUE(Apply({Message("a", 1), Message("b", 2)}).ok());
  absl::StatusOr<BatchResult> result = Apply({Message("b", 2), Message("c", 3)});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->already_applied, 1);
  EXPECT_EQ(result->applied, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM effects"), 3);
}

TEST_F(ConsumerStoreTest, FailedApplyCommitsThePrefixAndHandsBackTheRest) {
  failing_id_ = "b";
  absl::StatusOr<BatchResult> result = Apply({Message("a", 1), Message("b", 2), Message("c", 3)});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->dispositions,
            (std::vector<Disposition>{Disposition::kAck, Disposition::kNak, Disposition::kNak}));
  EXPECT_FALSE(result->apply_error.ok());
  EXPECT_EQ(result->position, 1u);
  // b's own insert was rolled back with its savepoint.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM effects"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM _txcoord_inbox"), 1);
}

TEST_F(ConsumerStoreTest, LastDeliveryOfAFailingMessageIsDeadLetteredAndSkipped) {
  failing_id_ = "b";
  absl::StatusOr<BatchResult> result =
      Apply({Message("b", 2, /*deliveries=*/3), Message("c", 3)}, /*max_deliveries=*/3);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->dispositions,
            (std::vector<Disposition>{Disposition::kTerm, Disposition::kAck}));
  EXPECT_EQ(result->dead_lettered, 1);
  EXPECT_EQ(result->position, 3u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM _txcoord_consumer_dead WHERE msg_id = 'b' AND "
                  "deliveries = 3 AND stream_seq = 2"),
            1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM effects"), 1);  // c only
}

TEST_F(ConsumerStoreTest, PruneDeletesOnlyOldInboxRows) {
  ASSERT_TRUE(Apply({Message("a", 1)}).ok());
  EXPECT_EQ(*store_->PruneInbox(absl::Now() - absl::Hours(1)), 0);
  EXPECT_EQ(*store_->PruneInbox(absl::Now() + absl::Seconds(1)), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM _txcoord_inbox"), 0);
}

TEST(ConsumerStoreOpenTest, UnwritableDatabaseIsFailedPrecondition) {
  absl::StatusOr<std::unique_ptr<ConsumerStore>> store =
      ConsumerStore::Open("/proc/txcoord-no-such-dir/x.db", true);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find("/proc/txcoord-no-such-dir/x.db"), std::string::npos);
}

}  // namespace
}  // namespace txcoord::consumer_internal
