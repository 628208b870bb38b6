#include "coordinator/retained_outcomes.h"

#include <algorithm>
#include <optional>

#include "absl/base/internal/endian.h"
#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"

namespace txcoord::coordinator {

RetainedOutcomes::RetainedOutcomes(const RetentionOptions& options) : options_(options) {}

RetainedOutcomes::Chunk& RetainedOutcomes::ChunkAt(const Key& key) {
  Chunk& chunk = chunks_[key];
  if (chunk.words.empty()) chunk.words.assign(kChunkSequences / 64, 0);
  return chunk;
}

void RetainedOutcomes::Add(uint64_t epoch, uint64_t sequence, absl::Time decided) {
  if (sequence == 0) return;
  const Key key = KeyOf(epoch, sequence);
  Chunk& chunk = ChunkAt(key);
  const uint64_t bit = sequence - key.second;
  uint64_t& word = chunk.words[bit / 64];
  const uint64_t mask = uint64_t{1} << (bit % 64);
  chunk.newest = std::max(chunk.newest, decided);
  if ((word & mask) != 0) return;
  word |= mask;
  ++chunk.count;
  ++committed_;
}

RetainedOutcome RetainedOutcomes::Find(uint64_t epoch, uint64_t sequence) const {
  const Key key = KeyOf(epoch, sequence);
  auto it = chunks_.find(key);
  if (it != chunks_.end()) {
    const uint64_t bit = sequence - key.second;
    if ((it->second.words[bit / 64] >> (bit % 64)) & 1) return RetainedOutcome::kCommitted;
  }
  return IsExpired(epoch, sequence) ? RetainedOutcome::kExpired : RetainedOutcome::kNotCommitted;
}

size_t RetainedOutcomes::Prune(absl::Time now, const std::function<ExpiredMark()>& limit) {
  const absl::Time cutoff = now - options_.retention;
  size_t dropped = 0;
  std::optional<ExpiredMark> open;
  while (!chunks_.empty()) {
    auto oldest = chunks_.begin();
    const ExpiredMark last{oldest->first.first, oldest->first.second + kChunkSequences - 1};
    if (bytes() <= options_.max_bytes) {
      if (oldest->second.newest >= cutoff) break;
      if (limit) {
        if (!open) open = limit();
        if (*open < last) break;
      }
    }
    expired_ = std::max(expired_, last);
    committed_ -= oldest->second.count;
    chunks_.erase(oldest);
    ++dropped;
  }
  return dropped;
}

void RetainedOutcomes::ExpireThrough(const ExpiredMark& mark) {
  expired_ = std::max(expired_, mark);
}

absl::Status RetainedOutcomes::Merge(const OutcomeChunk& chunk) {
  if (chunk.first_sequence % kChunkSequences != 0 || chunk.bitmap.size() > kChunkBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outcome chunk of epoch ", chunk.epoch, " at sequence ", chunk.first_sequence,
        " is not aligned to ", kChunkSequences, " or holds over ", kChunkBytes, " bytes"));
  }
  if (chunk.bitmap.find_first_not_of('\0') == std::string::npos) return absl::OkStatus();
  Chunk& into = ChunkAt({chunk.epoch, chunk.first_sequence});
  into.newest = std::max(into.newest, chunk.newest);
  for (size_t i = 0; i < chunk.bitmap.size(); ++i) {
    const uint64_t byte = static_cast<uint8_t>(chunk.bitmap[i]);
    if (byte == 0) continue;
    uint64_t& word = into.words[i / 8];
    const uint64_t bits = byte << (8 * (i % 8));
    const auto added = static_cast<uint32_t>(absl::popcount(bits & ~word));
    word |= bits;
    into.count += added;
    committed_ += added;
  }
  // Sequence 0 is never issued; a damaged chunk must not make it committed.
  if (chunk.first_sequence == 0 && (into.words[0] & 1) != 0) {
    into.words[0] &= ~uint64_t{1};
    --into.count;
    --committed_;
  }
  return absl::OkStatus();
}

namespace {

// A chunk as it is persisted: trailing zero bytes carry nothing, so a young
// chunk is short on disk.
OutcomeChunk Persisted(uint64_t epoch, uint64_t first, absl::Time newest,
                       const std::vector<uint64_t>& words) {
  OutcomeChunk persisted{epoch, first, newest, std::string(RetainedOutcomes::kChunkBytes, '\0')};
  // Checkpoints encode every chunk under the runtime's lock: a word at a
  // time, not a byte at a time.
  for (size_t w = 0; w < words.size(); ++w) {
    absl::little_endian::Store64(&persisted.bitmap[w * 8], words[w]);
  }
  const size_t used = persisted.bitmap.find_last_not_of('\0');
  persisted.bitmap.resize(used == std::string::npos ? 0 : used + 1);
  return persisted;
}

}  // namespace

std::vector<OutcomeChunk> RetainedOutcomes::Chunks() const {
  std::vector<OutcomeChunk> out;
  out.reserve(chunks_.size());
  for (const auto& [key, chunk] : chunks_) {
    out.push_back(Persisted(key.first, key.second, chunk.newest, chunk.words));
  }
  return out;
}

std::optional<OutcomeChunk> RetainedOutcomes::ChunkOf(uint64_t epoch, uint64_t sequence) const {
  const Key key = KeyOf(epoch, sequence);
  auto it = chunks_.find(key);
  if (it == chunks_.end()) return std::nullopt;
  return Persisted(key.first, key.second, it->second.newest, it->second.words);
}

}  // namespace txcoord::coordinator
