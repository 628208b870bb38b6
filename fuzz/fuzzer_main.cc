// The libFuzzer entry point of one fuzz target; CMake builds it once per
// target with TXCOORD_FUZZ_FUNCTION naming the function in fuzz_targets.h.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  txcoord::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return txcoord::fuzz::TXCOORD_FUZZ_FUNCTION(data, size);
}
