#include "common/vote_proof.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
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

// HMAC contexts kept for reuse, each keyed afresh for each call. The
// one-shot HMAC() looks the algorithm and the digest up and builds a
// context every time, which cost some 15 us a call here (an agent signs
// each early prepare's vote, a coordinator checks every proof in a
// Commit); keying a kept context costs two SHA-256 blocks. A context is
// taken for one call and given back, so there are as many as calls ever
// ran at once. Never freed: no destructor can race OpenSSL's own cleanup
// at exit with a thread still running.
class HmacContexts final {
 public:
  EVP_MAC_CTX* Take() {
    {
      absl::MutexLock lock(&mu_);
      if (!free_.empty()) {
        EVP_MAC_CTX* ctx = free_.back();
        free_.pop_back();
        return ctx;
      }
    }
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    TXCOORD_CHECK(mac != nullptr) << "OpenSSL has no HMAC";
    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);  // holds its own reference to `mac`
    EVP_MAC_free(mac);
    TXCOORD_CHECK(ctx != nullptr) << "cannot make an HMAC context";
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                                 OSSL_PARAM_construct_end()};
    TXCOORD_CHECK(EVP_MAC_CTX_set_params(ctx, params) == 1) << "OpenSSL has no HMAC-SHA256";
    return ctx;
  }
  void Give(EVP_MAC_CTX* ctx) {
    absl::MutexLock lock(&mu_);
    free_.push_back(ctx);
  }

 private:
  absl::Mutex mu_;
  std::vector<EVP_MAC_CTX*> free_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::string HmacSha256(absl::string_view key, absl::string_view message) {
  static auto* const contexts = new HmacContexts();
  EVP_MAC_CTX* const ctx = contexts->Take();
  // A null key would mean "the key of the last call": an empty one must
  // still be a key.
  static const unsigned char kNoBytes = 0;
  const auto* key_bytes =
      key.empty() ? &kNoBytes : reinterpret_cast<const unsigned char*>(key.data());
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t length = 0;
  const bool done = EVP_MAC_init(ctx, key_bytes, key.size(), nullptr) == 1 &&
                    EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(message.data()),
                                   message.size()) == 1 &&
                    EVP_MAC_final(ctx, digest, &length, sizeof(digest)) == 1;
  TXCOORD_CHECK(done) << "HMAC-SHA256 failed";
  contexts->Give(ctx);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

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
  return HmacSha256(secret, message);
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
  std::string proof = HmacSha256(key, message);
  proof.resize(kVoteProofBytes);
  return proof;
}

bool VerifyVote(absl::string_view key, const VoteClaim& claim, absl::string_view proof) {
  if (key.empty() || proof.size() != kVoteProofBytes) return false;
  const std::string expected = SignVote(key, claim);
  return CRYPTO_memcmp(expected.data(), proof.data(), kVoteProofBytes) == 0;
}

}  // namespace txcoord
