#include "participant/vote_key_holder.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/fake_scheduler.h"
#include "common/vote_proof.h"

namespace txcoord::participant {
namespace {

TEST(VoteKeyHolderTest, AKeySignsForItsTxidsClusterAndEpochOnly) {
  FakeScheduler clock;
  VoteKeyHolder holder(&clock);
  EXPECT_FALSE(holder.For("c1.4.1", "a:1").has_value());
  holder.Note("c1.4.1", "key-4");
  std::optional<Enlister::VoteSigning> signing = holder.For("c1.4.99", "a:1");
  ASSERT_TRUE(signing.has_value());
  EXPECT_EQ(signing->key, "key-4");
  EXPECT_EQ(signing->endpoint, "a:1");
  EXPECT_FALSE(holder.For("c1.5.1", "a:1").has_value());  // another epoch
  EXPECT_FALSE(holder.For("c2.4.1", "a:1").has_value());  // another cluster
  EXPECT_FALSE(holder.For("c1.4.1", "").has_value());     // no endpoint to sign
  EXPECT_FALSE(holder.For("junk", "a:1").has_value());
  // An empty key (a coordinator without signed votes) changes nothing.
  holder.Note("c1.5.1", "");
  EXPECT_EQ(holder.For("c1.4.2", "a:1")->key, "key-4");
  holder.Note("c1.5.1", "key-5");
  EXPECT_FALSE(holder.For("c1.4.2", "a:1").has_value());
  EXPECT_EQ(holder.For("c1.5.2", "a:1")->key, "key-5");
}

// A key that went stale unnoticed (an epoch served again under a new
// secret) is used for at most kMaxAge: then votes go by Enlist, whose
// answer brings the key afresh.
TEST(VoteKeyHolderTest, AKeyIsUsedForAtMostItsMaxAgeFromTheAnswerThatBroughtIt) {
  FakeScheduler clock;
  VoteKeyHolder holder(&clock);
  holder.Note("c1.4.1", "key-4");
  clock.Advance(VoteKeyHolder::kMaxAge - absl::Seconds(1));
  EXPECT_TRUE(holder.For("c1.4.2", "a:1").has_value());
  clock.Advance(absl::Seconds(1));
  EXPECT_FALSE(holder.For("c1.4.2", "a:1").has_value());
  holder.Note("c1.4.3", "key-4b");
  EXPECT_EQ(holder.For("c1.4.4", "a:1")->key, "key-4b");
}

// A txid far beyond any the coordinator answered for was made up by a
// client: no vote is signed for it, so the coordinator may presume it
// aborted without moving its next txid past it.
TEST(VoteKeyHolderTest, NoKeyForATxidFarBeyondTheOnesTheCoordinatorAnsweredFor) {
  FakeScheduler clock;
  VoteKeyHolder holder(&clock);
  holder.Note("c1.4.10", "key-4");
  holder.Note("c1.4.7", "key-4");  // an answer for an earlier txid keeps the highest
  EXPECT_TRUE(holder.For(absl::StrCat("c1.4.", 10 + kMaxSignedSequencesAhead), "a:1").has_value());
  EXPECT_FALSE(holder.For(absl::StrCat("c1.4.", 11 + kMaxSignedSequencesAhead), "a:1").has_value());
  EXPECT_FALSE(holder.For("c1.4.18446744073709551615", "a:1").has_value());
  EXPECT_TRUE(holder.For("c1.4.1", "a:1").has_value());  // earlier ones, reserved say
}

}  // namespace
}  // namespace txcoord::participant
