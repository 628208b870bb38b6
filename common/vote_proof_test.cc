#include "common/vote_proof.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"

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

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

// RFC 4231's test cases 1, 2 and 6, and the empty key. Each call re-keys
// a kept context: an empty key right after another must not be taken for
// "the key of the last call".
TEST(VoteProofTest, HmacSha256MatchesTheRfcVectorsWhateverKeyCameBefore) {
  EXPECT_EQ(Hex(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Hex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(Hex(HmacSha256(std::string(131, '\xaa'),
                           "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(Hex(HmacSha256(absl::string_view(), "")),  // no bytes at all, not even a pointer
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ(Hex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Contexts are shared out one call at a time: proofs made on several
// threads at once, under keys that alternate, are the ones made on one.
TEST(VoteProofTest, ProofsMadeOnSeveralThreadsAtOnceAreTheSame) {
  const std::string secret = NewVoteSecret();
  const std::vector<std::string> keys = {DeriveVoteKey(secret, "bank-a"),
                                         DeriveVoteKey(secret, "bank-b")};
  const VoteClaim claim{"c1.4.17", "bank-a", 7, "h:1"};
  const std::vector<std::string> expected = {SignVote(keys[0], claim), SignVote(keys[1], claim)};
  ASSERT_NE(expected[0], expected[1]);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const size_t k = static_cast<size_t>((i + t) % 2);
        if (SignVote(keys[k], claim) != expected[k]) ++mismatches[static_cast<size_t>(t)];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace txcoord
