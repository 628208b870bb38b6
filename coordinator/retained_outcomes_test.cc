#include "coordinator/retained_outcomes.h"

#include <vector>

#include "coordinator/records.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator {
namespace {

constexpr uint64_t kChunk = RetainedOutcomes::kChunkSequences;
const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

TEST(RetainedOutcomesTest, AddedSequencesAreCommittedAndOthersAreNot) {
  RetainedOutcomes kept;
  kept.Add(3, 1, kT0);
  kept.Add(3, kChunk + 5, kT0);
  EXPECT_EQ(kept.Find(3, 1), RetainedOutcome::kCommitted);
  EXPECT_EQ(kept.Find(3, kChunk + 5), RetainedOutcome::kCommitted);
  EXPECT_EQ(kept.Find(3, 2), RetainedOutcome::kNotCommitted);
  EXPECT_EQ(kept.Find(4, 1), RetainedOutcome::kNotCommitted);
  EXPECT_EQ(kept.committed_count(), 2u);
  kept.Add(3, 1, kT0);  // a replayed COMMIT counts once
  EXPECT_EQ(kept.committed_count(), 2u);
  EXPECT_EQ(kept.chunk_count(), 2u);
}

TEST(RetainedOutcomesTest, SequenceZeroIsNeverCommitted) {
  RetainedOutcomes kept;
  kept.Add(1, 0, kT0);
  EXPECT_EQ(kept.Find(1, 0), RetainedOutcome::kNotCommitted);
  EXPECT_EQ(kept.committed_count(), 0u);
}

TEST(RetainedOutcomesTest, ChunksPastTheWindowGoOldestFirstAndTheirRangeExpires) {
  RetainedOutcomes kept({absl::Hours(1), 1 << 20});
  kept.Add(1, 10, kT0);                              // epoch 1, chunk 0
  kept.Add(2, 10, kT0 + absl::Minutes(30));          // epoch 2, chunk 0
  kept.Add(2, kChunk + 1, kT0 + absl::Minutes(50));  // epoch 2, chunk 1
  EXPECT_EQ(kept.Prune(kT0 + absl::Minutes(59)), 0u);
  EXPECT_EQ(kept.Prune(kT0 + absl::Minutes(61)), 1u);
  EXPECT_EQ(kept.Find(1, 10), RetainedOutcome::kExpired);
  EXPECT_EQ(kept.Find(1, 11), RetainedOutcome::kExpired);          // aborted or not: unknown now
  EXPECT_EQ(kept.Find(1, kChunk - 1), RetainedOutcome::kExpired);  // the chunk's whole range...
  // ...but not later ones: a chunk never made means no commit there.
  EXPECT_EQ(kept.Find(1, 5 * kChunk), RetainedOutcome::kNotCommitted);
  EXPECT_EQ(kept.Find(2, 10), RetainedOutcome::kCommitted);
  EXPECT_EQ(kept.Find(2, 11), RetainedOutcome::kNotCommitted);
  EXPECT_EQ(kept.Prune(kT0 + absl::Minutes(95)), 1u);
  EXPECT_EQ(kept.Find(2, 11), RetainedOutcome::kExpired);
  EXPECT_EQ(kept.Find(2, kChunk + 1), RetainedOutcome::kCommitted);
  EXPECT_EQ(kept.Find(2, kChunk + 2), RetainedOutcome::kNotCommitted);
}

TEST(RetainedOutcomesTest, MemoryStaysWithinItsBoundWhateverTheWindow) {
  RetainedOutcomes kept({absl::Hours(24), 4 * RetainedOutcomes::kChunkBytes});
  for (uint64_t s = 1; s <= 20 * kChunk; s += 3) {
    kept.Add(1, s, kT0);
    kept.Prune(kT0);
    ASSERT_LE(kept.bytes(), 4 * RetainedOutcomes::kChunkBytes) << s;
  }
  EXPECT_EQ(kept.chunk_count(), 4u);
  EXPECT_EQ(kept.Find(1, 1), RetainedOutcome::kExpired);
  EXPECT_EQ(kept.Find(1, 20 * kChunk - 1), RetainedOutcome::kCommitted);
}

TEST(RetainedOutcomesTest, ACommitAfterItsRangeExpiredStillAnswersCommitted) {
  RetainedOutcomes kept({absl::Hours(1), 1 << 20});
  kept.Add(1, 1, kT0);
  kept.Prune(kT0 + absl::Hours(2));
  // A transaction whose phase 2 outlasted the window ends now.
  kept.Add(1, 7, kT0 + absl::Hours(2));
  EXPECT_EQ(kept.Find(1, 7), RetainedOutcome::kCommitted);
  EXPECT_EQ(kept.Find(1, 8), RetainedOutcome::kExpired);
}

TEST(RetainedOutcomesTest, ChunksSurviveEncodingAndMergeIntoAnEmptySet) {
  RetainedOutcomes kept;
  for (uint64_t s : std::vector<uint64_t>{1, 2, 63, 64, 1000, kChunk - 1, kChunk, 3 * kChunk + 9}) {
    kept.Add(5, s, kT0);
  }
  kept.ExpireThrough({4, UINT64_MAX});
  RetainedOutcomes restored;
  restored.ExpireThrough(*DecodeExpired(EncodeExpired(kept.expired())));
  for (const OutcomeChunk& chunk : kept.Chunks()) {
    absl::StatusOr<OutcomeChunk> decoded = DecodeRetained(EncodeRetained(chunk));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->newest, kT0);
    ASSERT_TRUE(restored.Merge(*decoded).ok());
  }
  EXPECT_EQ(restored.committed_count(), kept.committed_count());
  for (uint64_t s = 0; s < 4 * kChunk; ++s) {
    ASSERT_EQ(restored.Find(5, s), kept.Find(5, s)) << s;
  }
  EXPECT_EQ(restored.Find(4, 123), RetainedOutcome::kExpired);
}

TEST(RetainedOutcomesTest, AYoungChunkIsShortOnDisk) {
  RetainedOutcomes kept;
  kept.Add(1, 3, kT0);
  ASSERT_EQ(kept.Chunks().size(), 1u);
  EXPECT_EQ(kept.Chunks()[0].bitmap.size(), 1u);
}

TEST(RetainedOutcomesTest, AMisalignedOrOversizedChunkIsRefused) {
  RetainedOutcomes kept;
  EXPECT_FALSE(kept.Merge({1, 5, kT0, "\x01"}).ok());
  EXPECT_FALSE(
      kept.Merge({1, 0, kT0, std::string(RetainedOutcomes::kChunkBytes + 1, '\x01')}).ok());
  EXPECT_EQ(kept.committed_count(), 0u);
}

TEST(RetainedOutcomesTest, ADamagedChunkNeverMakesSequenceZeroCommitted) {
  RetainedOutcomes kept;
  ASSERT_TRUE(kept.Merge({1, 0, kT0, "\x03"}).ok());
  EXPECT_EQ(kept.Find(1, 0), RetainedOutcome::kNotCommitted);
  EXPECT_EQ(kept.Find(1, 1), RetainedOutcome::kCommitted);
  EXPECT_EQ(kept.committed_count(), 1u);
}

}  // namespace
}  // namespace txcoord::coordinator
