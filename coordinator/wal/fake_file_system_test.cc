#include "coordinator/wal/fake_file_system.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::wal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(fs_.CreateDir("/d").ok()); }

  std::unique_ptr<WritableFile> Create(const std::string& path) {
    auto file = fs_.NewWritableFile(path);
    EXPECT_TRUE(file.ok()) << file.status();
    return file.ok() ? std::move(*file) : nullptr;
  }

  FakeFileSystem fs_;
};

TEST_F(FakeFileSystemTest, CrashKeepsSyncedBytesAndDropsTheRest) {
  auto file = Create("/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("durable").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("+volatile").ok());
  EXPECT_EQ(fs_.Contents("/d/f"), "durable+volatile");
  EXPECT_EQ(fs_.UnsyncedBytes("/d/f"), 9u);
  fs_.Crash();
  EXPECT_EQ(fs_.Contents("/d/f"), "durable");
}

TEST_F(FakeFileSystemTest, CrashUndoesCreationsAndRenamesNotMadeDurableByADirSync) {
  auto a = Create("/d/a.tmp");
  ASSERT_TRUE(a->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.Rename("/d/a.tmp", "/d/a").ok());
  auto b = Create("/d/b");
  ASSERT_TRUE(b->Sync().ok());
  fs_.Crash();
  std::vector<std::string> names;
  ASSERT_TRUE(fs_.ListDir("/d", &names).ok());
  EXPECT_THAT(names, ElementsAre("a.tmp"));
}

TEST_F(FakeFileSystemTest, HandlesOpenedBeforeACrashFail) {
  auto file = Create("/d/f");
  fs_.Crash();
  EXPECT_FALSE(file->Append("x").ok());
  EXPECT_FALSE(file->Sync().ok());
}

TEST_F(FakeFileSystemTest, NthOperationOfAKindFailsOnceOrForGood) {
  auto file = Create("/d/f");
  fs_.InjectFault(FsOp::kWrite, 2, absl::InternalError("EIO"));
  EXPECT_TRUE(file->Append("1").ok());
  EXPECT_EQ(file->Append("2").code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(file->Append("3").ok());
  EXPECT_EQ(fs_.Contents("/d/f"), "13");

  fs_.InjectFault(FsOp::kSync, 1, absl::InternalError("EIO"), /*sticky=*/true);
  EXPECT_FALSE(file->Sync().ok());
  EXPECT_FALSE(file->Sync().ok());
  EXPECT_EQ(fs_.UnsyncedBytes("/d/f"), 2u);
  fs_.ClearFaults();
  EXPECT_TRUE(file->Sync().ok());
}

TEST_F(FakeFileSystemTest, AnyKindCountsEveryMutatingOperation) {
  fs_.InjectFault(FsOp::kAny, 3, absl::InternalError("dead disk"), /*sticky=*/true);
  auto file = Create("/d/f");            // 1
  ASSERT_TRUE(file->Append("x").ok());   // 2
  EXPECT_FALSE(file->Sync().ok());       // 3
  EXPECT_FALSE(fs_.SyncDir("/d").ok());  // and everything after
  std::string data;
  EXPECT_TRUE(fs_.ReadFile("/d/f", &data).ok()) << "reads never fail";
}

TEST_F(FakeFileSystemTest, FullDiskWritesWhatFitsThenFailsWithEnospc) {
  auto file = Create("/d/f");
  fs_.SetFreeBytes(4);
  absl::Status s = file->Append("abcdef");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("No space left on device"));
  EXPECT_EQ(fs_.Contents("/d/f"), "abcd");
  EXPECT_FALSE(file->Append("g").ok());
}

TEST_F(FakeFileSystemTest, PreallocateWritesSyncedZerosAndAppendsGoOnWhereTheyWere) {
  auto file = Create("/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("head").ok());
  ASSERT_TRUE(file->Preallocate(10).ok());
  EXPECT_EQ(fs_.Contents("/d/f"), std::string("head") + std::string(6, '\0'));
  EXPECT_EQ(fs_.UnsyncedBytes("/d/f"), 10u);
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_EQ(fs_.UnsyncedBytes("/d/f"), 0u);
  ASSERT_TRUE(file->Append("ab").ok());
  EXPECT_EQ(fs_.Contents("/d/f"), std::string("headab") + std::string(4, '\0'));
  // Past the zeros the file grows again.
  ASSERT_TRUE(file->Append("cdefgh").ok());
  EXPECT_EQ(fs_.Contents("/d/f"), "headabcdefgh");
  ASSERT_TRUE(file->Preallocate(4).ok());  // shorter than the file: nothing
  EXPECT_EQ(fs_.Contents("/d/f"), "headabcdefgh");
}

TEST_F(FakeFileSystemTest, CrashTakesBackAnUnsyncedOverwriteOfPreallocatedZeros) {
  auto file = Create("/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("a").ok());
  ASSERT_TRUE(file->Preallocate(8).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("bc").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("de").ok());
  EXPECT_EQ(fs_.UnsyncedBytes("/d/f"), 5u);  // from the first byte that differs
  fs_.Crash();
  EXPECT_EQ(fs_.Contents("/d/f"), std::string("abc") + std::string(5, '\0'));
}

TEST_F(FakeFileSystemTest, PreallocateOnAFullDiskWritesWhatFitsThenFailsWithEnospc) {
  auto file = Create("/d/f");
  ASSERT_TRUE(file->Append("ab").ok());
  fs_.SetFreeBytes(3);
  absl::Status s = file->Preallocate(10);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("No space left on device"));
  EXPECT_EQ(fs_.Contents("/d/f"), std::string("ab") + std::string(3, '\0'));
  // Overwriting the zeros takes no space; growing the file does.
  EXPECT_TRUE(file->Append("cde").ok());
  EXPECT_EQ(file->Append("f").code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(FakeFileSystemTest, TruncateIsDurable) {
  auto file = Create("/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("abcdef").ok());
  ASSERT_TRUE(fs_.Truncate("/d/f", 3).ok());
  fs_.Crash();
  EXPECT_EQ(fs_.Contents("/d/f"), "abc");
}

TEST_F(FakeFileSystemTest, MissingFilesAreNotFound) {
  std::string data;
  EXPECT_EQ(fs_.ReadFile("/d/none", &data).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.NewAppendableFile("/d/none").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.NewWritableFile("/nodir/f").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.Remove("/d/none").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace txcoord::wal
