#include "coordinator/records.h"

#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

TEST(RecordsTest, CommitRoundTrips) {
  LogCommit commit{"c1.2.3", {{"orders", "127.0.0.1:7171"}, {"stock", "10.0.0.2:7172"}}};
  auto decoded = DecodeCommit(EncodeCommit(commit));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->txid, commit.txid);
  EXPECT_EQ(decoded->branches, commit.branches);
}

TEST(RecordsTest, EndRoundTrips) {
  auto decoded = DecodeEnd(EncodeEnd({"c1.2.3"}));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->txid, "c1.2.3");
  EXPECT_FALSE(decoded->committed);
}

TEST(RecordsTest, MarkDoneRoundTrips) {
  LogMarkDone mark{"c1.2.3", "orders", "set v=9 by hand"};
  auto decoded = DecodeMarkDone(EncodeMarkDone(mark));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->txid, mark.txid);
  EXPECT_EQ(decoded->participant, mark.participant);
  EXPECT_EQ(decoded->note, mark.note);
}

TEST(RecordsTest, MarkDoneWithoutANoteRoundTrips) {
  auto decoded = DecodeMarkDone(EncodeMarkDone({"c1.2.3", "orders", ""}));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->participant, "orders");
  EXPECT_EQ(decoded->note, "");
}

TEST(RecordsTest, EveryTruncationOfAMarkDoneIsRejected) {
  std::string payload = EncodeMarkDone({"c1.2.3", "orders", "note"});
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_EQ(DecodeMarkDone(payload.substr(0, n)).status().code(), absl::StatusCode::kDataLoss)
        << n;
  }
  EXPECT_EQ(DecodeMarkDone(payload + "x").status().code(), absl::StatusCode::kDataLoss);
}

TEST(RecordsTest, EveryTruncationOfACommitIsRejected) {
  std::string payload = EncodeCommit({"c1.2.3", {{"a", "h:1"}, {"b", "h:2"}}});
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_EQ(DecodeCommit(payload.substr(0, n)).status().code(), absl::StatusCode::kDataLoss) << n;
  }
  EXPECT_EQ(DecodeCommit(payload + "x").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace txcoord::coordinator
