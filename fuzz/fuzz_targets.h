// txcoord's fuzz targets as plain functions, so that libFuzzer binaries
// (fuzz/*_fuzzer.cc) and the regression test that replays saved inputs
// (fuzz/regression_test.cc) share them. Each takes arbitrary bytes, must
// never crash, hang or leak, and aborts with a message when a property it
// checks does not hold.
#ifndef TXCOORD_FUZZ_FUZZ_TARGETS_H_
#define TXCOORD_FUZZ_FUZZ_TARGETS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace txcoord::fuzz {

// WAL segments (raw bytes, or valid records then damaged) through CheckLog
// and Log::Open on a FakeFileSystem: both return a status and agree; no
// damaged record is ever replayed as good; a cut tail is repaired.
int FuzzWalReader(const uint8_t* data, size_t size);
// COMMIT/END record decoders and txid parsing: decode(encode(decode(x)))
// equals decode(x).
int FuzzRecords(const uint8_t* data, size_t size);
// Sequences of txcoord.v1 Coordinator requests (proto bytes) against the
// real engine, with votes, acknowledgements and timers driven by the input:
// statuses only, and never a transaction decided both ways.
int FuzzCoordinatorRequests(const uint8_t* data, size_t size);
// txcoord.v1 Participant and Agent requests (proto bytes) through the
// agent's real service classes and a real participant on SQLite.
int FuzzAgentRequests(const uint8_t* data, size_t size);
// Frames of the framed ports (rpc/frame.h): a byte stream read as the
// server reads requests, and bytes decoded as a client decodes an answer.
int FuzzFrames(const uint8_t* data, size_t size);

struct Target {
  const char* name;  // also the corpus directory: fuzz/corpus/<name>/
  int (*fn)(const uint8_t*, size_t);
};
const std::vector<Target>& AllTargets();

// Silences txcoord's and protobuf's logging (call once).
void QuietLogs();

// Aborts with `what` when `ok` is false (a finding for libFuzzer).
void Require(bool ok, const std::string& what);

}  // namespace txcoord::fuzz

#endif  // TXCOORD_FUZZ_FUZZ_TARGETS_H_
