// Replays every saved fuzz input, in the ordinary build: the seed corpus
// (fuzz/corpus/<target>/) and every input a fuzzer ever crashed on
// (fuzz/regressions/<target>/), so that a fixed crash stays fixed.
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/wal/fake_file_system.h"
#include "coordinator/wal/log_format.h"
#include "coordinator/wal/log_reader.h"
#include "fuzz/fuzz_targets.h"
#include "gtest/gtest.h"

namespace txcoord::fuzz {
namespace {

std::vector<std::filesystem::path> Inputs(const std::string& target) {
  std::vector<std::filesystem::path> files;
  for (const char* kind : {"corpus", "regressions"}) {
    const std::filesystem::path dir = std::filesystem::path(TXCOORD_FUZZ_DIR) / kind / target;
    if (!std::filesystem::is_directory(dir)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

// Test names and CTest show the target's name, not its bytes.
void PrintTo(const Target& target, std::ostream* os) { *os << target.name; }

namespace {

class FuzzRegressionTest : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzRegressionTest, EverySavedInputRunsCleanly) {
  QuietLogs();
  const Target& target = GetParam();
  const std::vector<std::filesystem::path> files = Inputs(target.name);
  EXPECT_FALSE(files.empty()) << "no seed corpus for " << target.name;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string data = bytes.str();
    // A violated property aborts the process (fuzz_targets.h): the test
    // then dies naming the input.
    EXPECT_EQ(target.fn(reinterpret_cast<const uint8_t*>(data.data()), data.size()), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzRegressionTest, ::testing::ValuesIn(AllTargets()),
                         [](const ::testing::TestParamInfo<Target>& info) {
                           return std::string(info.param.name);
                         });

// Found by the wal_reader fuzzer (fuzz/findings/): a record torn by a crash
// whose payload happens to contain a whole valid frame is judged corruption
// ("a valid record follows"), and the coordinator refuses to start, instead
// of cutting the torn tail. COMMIT payloads carry the Enlist endpoint, which
// is only length-checked, so a client can plant such bytes. Fixed: the reader
// looks for a following record only past a bad record's claimed extent (or
// where its checksum says it ends).
TEST(FuzzFindingTest, TornRecordWithAFrameInItsPayloadIsATornTail) {
  std::string inner;
  wal::AppendRecord(1, "planted", &inner);
  std::string segment;
  wal::SegmentHeader header;
  header.flags = wal::kFlagBase;
  header.sequence = 1;
  wal::AppendSegmentHeader(header, &segment);
  wal::AppendRecord(1, "first", &segment);
  const size_t torn_start = segment.size();
  wal::AppendRecord(1, "endpoint=" + inner + std::string(40, 'x'), &segment);
  // The crash kept the planted frame but not the end of the outer record.
  segment.resize(torn_start + wal::kRecordHeaderBytes + 9 + inner.size() + 5);
  wal::FakeFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/w").ok());
  fs.SetContents("/w/" + wal::SegmentFileName(1), segment);
  EXPECT_TRUE(wal::CheckLog("/w", &fs, nullptr).ok());
}

}  // namespace
}  // namespace txcoord::fuzz
