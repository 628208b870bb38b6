// The fuzz targets' view of their input: bytes taken from the front, and
// zeros once it runs out, so that every input drives a whole run.
#ifndef TXCOORD_FUZZ_FUZZ_INPUT_H_
#define TXCOORD_FUZZ_FUZZ_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

namespace txcoord::fuzz {

class Input final {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  size_t Left() const { return size_ - pos_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // Up to `n` bytes (fewer at the end of the input).
  std::string Take(size_t n) {
    n = std::min(n, Left());
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace txcoord::fuzz

#endif  // TXCOORD_FUZZ_FUZZ_INPUT_H_
