// The key an agent signs its votes with for one coordinator (docs/protocol.md,
// "Signed votes"): the one in the latest OK Enlist answer that carried a
// key. The coordinator took that Enlist's txid, so it serves the txid's
// cluster and epoch, and the key signs for txids of exactly those, for at
// most kMaxAge: then the next vote goes by Enlist again, whose answer
// brings the key afresh. That bounds how long a key that went stale
// unnoticed is used (a coordinator started on an old copy of its data
// directory serves an epoch again, under a new secret).
#ifndef TXCOORD_PARTICIPANT_VOTE_KEY_HOLDER_H_
#define TXCOORD_PARTICIPANT_VOTE_KEY_HOLDER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/scheduler.h"
#include "participant/participant.h"

namespace txcoord::participant {

// Thread-safe.
class VoteKeyHolder final {
 public:
  static constexpr absl::Duration kMaxAge = absl::Minutes(1);

  // `clock` (which must outlive the holder) ages the key.
  explicit VoteKeyHolder(Clock* clock = RealClock()) : clock_(clock) {}

  // Keeps `key` from an OK answer to an Enlist of `txid` (an empty key, from
  // a coordinator that takes no signed votes, changes nothing).
  void Note(const std::string& txid, const std::string& key);
  // The key for `txid`, signing with `endpoint`; nullopt when the key held
  // is for another cluster or epoch or older than kMaxAge, or none is held,
  // or `endpoint` is empty, or `txid` is more than kMaxSignedSequencesAhead
  // beyond every txid noted (made up: its vote goes by Enlist, refused).
  std::optional<Enlister::VoteSigning> For(const std::string& txid,
                                           const std::string& endpoint) const;

 private:
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::string key_ ABSL_GUARDED_BY(mu_);
  absl::Time noted_ ABSL_GUARDED_BY(mu_);
  std::string cluster_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;  // the highest noted in that cluster and epoch
};

}  // namespace txcoord::participant

#endif  // TXCOORD_PARTICIPANT_VOTE_KEY_HOLDER_H_
