// The outcomes a coordinator keeps after its transactions end, so that a
// client whose Commit reply was lost can still learn the outcome, also
// after a restart. Under presumed abort only the committed txids need
// keeping: any other txid of this coordinator's epochs did not commit. A
// committed txid is one bit in a bitmap chunk of its epoch's sequences;
// chunks are dropped oldest first once past the retention window or over
// the memory bound, and everything up to the last dropped chunk is then
// "expired": its outcome can no longer be told. See docs/wal-format.md.
//
//   RetainedOutcomes kept({absl::Hours(24), 16 << 20});
//   kept.Add(epoch, sequence, now);                 // a transaction committed
//   kept.Find(epoch, sequence);                     // kCommitted
//   kept.Prune(now);                                // drops what is too old
#ifndef TXCOORD_COORDINATOR_RETAINED_OUTCOMES_H_
#define TXCOORD_COORDINATOR_RETAINED_OUTCOMES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace txcoord::coordinator {

struct RetentionOptions {
  // How long a committed outcome is kept after it was decided (at least:
  // chunks go whole, so some outcomes stay a little longer).
  absl::Duration retention = absl::Hours(24);
  // Bound on the bitmaps' memory (and on their copy in each WAL
  // checkpoint); past it the oldest chunks go even inside the window.
  size_t max_bytes = 16 << 20;
};

// One chunk as it is persisted: the committed sequences in
// [first_sequence, first_sequence + kChunkSequences) of `epoch`.
struct OutcomeChunk {
  uint64_t epoch = 0;
  uint64_t first_sequence = 0;
  absl::Time newest = absl::InfinitePast();  // latest decision in the chunk
  std::string bitmap;                        // bit i (LSB first) = first_sequence + i committed
};

// (epoch, sequence): every txid at or before it (epoch first) is expired.
struct ExpiredMark {
  uint64_t epoch = 0;
  uint64_t sequence = 0;
  bool operator<(const ExpiredMark& other) const {
    return std::make_pair(epoch, sequence) < std::make_pair(other.epoch, other.sequence);
  }
};

enum class RetainedOutcome { kCommitted, kNotCommitted, kExpired };

// Not thread-safe (the engine's owner serialises calls). Copyable, for
// recovery to hand its result to the engine.
class RetainedOutcomes final {
 public:
  static constexpr uint64_t kChunkSequences = 16384;  // 2 KiB of bitmap
  static constexpr size_t kChunkBytes = kChunkSequences / 8;

  explicit RetainedOutcomes(const RetentionOptions& options = {});

  // `sequence` of `epoch` committed at `decided`. Sequence 0 is never
  // issued and is ignored. A sequence at or before the expired mark is
  // kept too (a transaction whose phase 2 outlasted the window): it then
  // answers committed while its chunk's other sequences stay expired.
  void Add(uint64_t epoch, uint64_t sequence, absl::Time decided);
  RetainedOutcome Find(uint64_t epoch, uint64_t sequence) const;
  // Drops the oldest chunks whose newest decision is older than the
  // retention window, and more while over max_bytes; advances the expired
  // mark past each. The window never drops a chunk whose range reaches
  // past `limit()` (asked only when a chunk is old enough): the txids
  // still open or not yet issued must not expire with it; the memory bound
  // does. Returns how many chunks went.
  size_t Prune(absl::Time now, const std::function<ExpiredMark()>& limit = nullptr);

  // Everything at or before `mark` is expired (recovery and start-up).
  void ExpireThrough(const ExpiredMark& mark);
  // Merges a persisted chunk (recovery). INVALID_ARGUMENT for a chunk that
  // is not aligned or too long.
  absl::Status Merge(const OutcomeChunk& chunk);

  // What a checkpoint must carry: the mark, then every chunk, oldest first.
  const ExpiredMark& expired() const { return expired_; }
  std::vector<OutcomeChunk> Chunks() const;
  // The chunk that holds (epoch, sequence), if kept (the decision log on
  // etcd writes each chunk it changed).
  std::optional<OutcomeChunk> ChunkOf(uint64_t epoch, uint64_t sequence) const;

  size_t chunk_count() const { return chunks_.size(); }
  size_t bytes() const { return chunks_.size() * kChunkBytes; }
  uint64_t committed_count() const { return committed_; }
  const RetentionOptions& options() const { return options_; }

 private:
  struct Chunk {
    std::vector<uint64_t> words;  // kChunkSequences bits
    absl::Time newest = absl::InfinitePast();
    uint32_t count = 0;
  };
  using Key = std::pair<uint64_t, uint64_t>;  // epoch, first sequence

  static Key KeyOf(uint64_t epoch, uint64_t sequence) {
    return {epoch, sequence - sequence % kChunkSequences};
  }
  bool IsExpired(uint64_t epoch, uint64_t sequence) const {
    return !(expired_ < ExpiredMark{epoch, sequence});
  }
  Chunk& ChunkAt(const Key& key);

  RetentionOptions options_;
  absl::btree_map<Key, Chunk> chunks_;
  ExpiredMark expired_;
  uint64_t committed_ = 0;
};

}  // namespace txcoord::coordinator

#endif  // TXCOORD_COORDINATOR_RETAINED_OUTCOMES_H_
