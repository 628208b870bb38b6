#include "common/vote_proof.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "common/check.h"

namespace txcoord {
namespace {

constexpr absl::string_view kKeyLabel = "txcoord vote key v1";
constexpr absl::string_view kProofLabel = "txcoord vote v1";

void AppendField(std::string* out, absl::string_view field) {
  const uint64_t n = field.size();
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(n >> (8 * i)));
  out->append(field.data(), field.size());
}

std::string Hmac(absl::string_view key, absl::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const unsigned char* done =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest, &length);
  TXCOORD_CHECK(done != nullptr) << "HMAC-SHA256 failed";
  return std::string(reinterpret_cast<const char*>(digest), length);
}

}  // namespace

std::string NewVoteSecret() {
  std::string secret(kVoteSecretBytes, '\0');
  TXCOORD_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()),
                           static_cast<int>(secret.size())) == 1)
      << "the system's random generator failed";
  return secret;
}

std::string DeriveVoteKey(absl::string_view secret, absl::string_view participant) {
  std::string message;
  AppendField(&message, kKeyLabel);
  AppendField(&message, participant);
  return Hmac(secret, message);
}

std::string SignVote(absl::string_view key, const VoteClaim& claim) {
  std::string message;
  AppendField(&message, kProofLabel);
  AppendField(&message, claim.txid);
  AppendField(&message, claim.participant);
  std::string token;
  for (int i = 0; i < 8; ++i) token.push_back(static_cast<char>(claim.branch_token >> (8 * i)));
  message.append(token);
  AppendField(&message, claim.endpoint);
  std::string proof = Hmac(key, message);
  proof.resize(kVoteProofBytes);
  return proof;
}

bool VerifyVote(absl::string_view key, const VoteClaim& claim, absl::string_view proof) {
  if (key.empty() || proof.size() != kVoteProofBytes) return false;
  const std::string expected = SignVote(key, claim);
  return CRYPTO_memcmp(expected.data(), proof.data(), kVoteProofBytes) == 0;
}

}  // namespace txcoord
