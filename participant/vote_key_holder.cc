#include "participant/vote_key_holder.h"

#include <algorithm>
#include <utility>

#include "common/txid.h"
#include "common/vote_proof.h"

namespace txcoord::participant {

void VoteKeyHolder::Note(const std::string& txid, const std::string& key) {
  if (key.empty()) return;
  absl::StatusOr<Txid> id = ParseTxid(txid);
  if (!id.ok()) return;
  absl::MutexLock lock(&mu_);
  if (id->cluster != cluster_ || id->epoch != epoch_) {
    sequence_ = id->sequence;
  } else {
    sequence_ = std::max(sequence_, id->sequence);
  }
  key_ = key;
  cluster_ = std::move(id->cluster);
  epoch_ = id->epoch;
  noted_ = clock_->Now();
}

std::optional<Enlister::VoteSigning> VoteKeyHolder::For(const std::string& txid,
                                                        const std::string& endpoint) const {
  if (endpoint.empty()) return std::nullopt;
  absl::StatusOr<Txid> id = ParseTxid(txid);
  if (!id.ok()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  if (key_.empty() || id->cluster != cluster_ || id->epoch != epoch_ ||
      clock_->Now() - noted_ >= kMaxAge ||
      (id->sequence > sequence_ && id->sequence - sequence_ > kMaxSignedSequencesAhead)) {
    return std::nullopt;
  }
  return Enlister::VoteSigning{key_, endpoint};
}

}  // namespace txcoord::participant
