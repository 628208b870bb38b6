#include "common/vote_proof.h"

#include <gtest/gtest.h>

namespace txcoord {
namespace {

TEST(VoteProofTest, AProofVerifiesUnderTheKeyThatSignedIt) {
  const std::string key = DeriveVoteKey(NewVoteSecret(), "bank-a");
  const VoteClaim claim{"c1.4.17", "bank-a", 0x1234, "127.0.0.1:7001"};
  const std::string proof = SignVote(key, claim);
  EXPECT_EQ(proof.size(), kVoteProofBytes);
  EXPECT_TRUE(VerifyVote(key, claim, proof));
}

TEST(VoteProofTest, ChangingAnyPartOfTheClaimBreaksTheProof) {
  const std::string key = DeriveVoteKey(NewVoteSecret(), "bank-a");
  const VoteClaim claim{"c1.4.17", "bank-a", 0x1234, "127.0.0.1:7001"};
  const std::string proof = SignVote(key, claim);
  VoteClaim other = claim;
  other.txid = "c1.4.18";
  EXPECT_FALSE(VerifyVote(key, other, proof));
  other = claim;
  other.participant = "bank-b";
  EXPECT_FALSE(VerifyVote(key, other, proof));
  other = claim;
  other.branch_token = 0x1235;
  EXPECT_FALSE(VerifyVote(key, other, proof));
  other = claim;
  other.endpoint = "127.0.0.1:7002";
  EXPECT_FALSE(VerifyVote(key, other, proof));
  // Field boundaries count: moving a byte from one field to the next is
  // another claim.
  const VoteClaim shifted{"c1.4.1", "7bank-a", 0x1234, "127.0.0.1:7001"};
  EXPECT_FALSE(VerifyVote(key, shifted, proof));
}

TEST(VoteProofTest, AProofDoesNotVerifyUnderAnotherKey) {
  const std::string secret = NewVoteSecret();
  const VoteClaim claim{"c1.4.17", "bank-a", 7, "h:1"};
  const std::string proof = SignVote(DeriveVoteKey(secret, "bank-a"), claim);
  // Another participant's key (an agent signing for a name not its own).
  EXPECT_FALSE(VerifyVote(DeriveVoteKey(secret, "bank-b"), claim, proof));
  // Another process's secret (a restarted coordinator).
  EXPECT_FALSE(VerifyVote(DeriveVoteKey(NewVoteSecret(), "bank-a"), claim, proof));
  // No key at all, and a truncated or altered proof.
  EXPECT_FALSE(VerifyVote("", claim, proof));
  const std::string key = DeriveVoteKey(secret, "bank-a");
  EXPECT_FALSE(VerifyVote(key, claim, proof.substr(0, kVoteProofBytes - 1)));
  std::string flipped = proof;
  flipped[3] ^= 1;
  EXPECT_FALSE(VerifyVote(key, claim, flipped));
}

TEST(VoteProofTest, KeysDependOnTheSecretAndTheParticipant) {
  const std::string secret = NewVoteSecret();
  EXPECT_EQ(secret.size(), kVoteSecretBytes);
  EXPECT_NE(secret, NewVoteSecret());
  EXPECT_EQ(DeriveVoteKey(secret, "a"), DeriveVoteKey(secret, "a"));
  EXPECT_NE(DeriveVoteKey(secret, "a"), DeriveVoteKey(secret, "b"));
  EXPECT_EQ(DeriveVoteKey(secret, "a").size(), 32u);
}

}  // namespace
}  // namespace txcoord
