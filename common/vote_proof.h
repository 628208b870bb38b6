// Signed votes: how an agent's YES vote reaches the coordinator inside the
// client's Commit instead of in an Enlist call of its own, without the
// client being able to invent one (docs/protocol.md, "Signed votes").
//
// Each coordinator process draws a random secret when it starts and never
// writes it down. It gives every participant that enlists a key of its own,
// derived from the secret and the participant's name, in the Enlist answer.
// With that key the agent signs what its vote promises: "participant P has
// durably prepared branch `token` of `txid` and is reached at `endpoint`".
// The client carries the proof in its Commit; the coordinator derives P's
// key again and checks it. A proof holds only under the process that gave
// the key (a restart draws a new secret, and its txids a new epoch).
#ifndef TXCOORD_COMMON_VOTE_PROOF_H_
#define TXCOORD_COMMON_VOTE_PROOF_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace txcoord {

// What a proof vouches for: a YES vote of one incarnation of one branch.
struct VoteClaim {
  absl::string_view txid;
  absl::string_view participant;
  uint64_t branch_token = 0;
  absl::string_view endpoint;  // where the coordinator reaches the agent
};

// kVoteSecretBytes random bytes from the operating system's generator.
inline constexpr size_t kVoteSecretBytes = 32;
std::string NewVoteSecret();

// HMAC-SHA256 (RFC 2104) of `message` under `key`: 32 bytes. Thread-safe.
std::string HmacSha256(absl::string_view key, absl::string_view message);

// The key of `participant` under `secret` (HMAC-SHA256; 32 bytes).
std::string DeriveVoteKey(absl::string_view secret, absl::string_view participant);

// The proof of `claim` under `key` (HMAC-SHA256 over the claim's fields,
// each length-prefixed, truncated to kVoteProofBytes).
inline constexpr size_t kVoteProofBytes = 16;
// An agent signs for a txid at most this many sequence numbers beyond the
// txid whose Enlist answer brought its key (a client may send any txid; one
// far ahead is made up). So the coordinator knows no proof exists for a
// txid this far beyond the next one it would issue, and may presume it
// aborted without moving past it (docs/protocol.md, "Signed votes").
inline constexpr uint64_t kMaxSignedSequencesAhead = uint64_t{1} << 32;
std::string SignVote(absl::string_view key, const VoteClaim& claim);

// Whether `proof` is SignVote(key, claim), compared in constant time. An
// empty key verifies nothing.
bool VerifyVote(absl::string_view key, const VoteClaim& claim, absl::string_view proof);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_VOTE_PROOF_H_
