#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "coordinator/wal/file_system.h"
#include "coordinator/wal/log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord::wal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PosixFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/txcoord_wal_test.XXXXXX";
    ASSERT_NE(::mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::vector<std::string> names;
    if (fs_->ListDir(dir_, &names).ok()) {
      for (const auto& n : names) (void)fs_->Remove(JoinPath(dir_, n));
    }
    ::rmdir(dir_.c_str());
  }

  FileSystem* fs_ = PosixFileSystem();
  std::string dir_;
};

TEST_F(PosixFileSystemTest, WrittenBytesReadBackAfterSyncRenameAndTruncate) {
  const std::string tmp = JoinPath(dir_, "f.tmp"), path = JoinPath(dir_, "f");
  auto file = fs_->NewWritableFile(tmp);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*file)->Append("hello ").ok());
  ASSERT_TRUE((*file)->Append("world").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->Close().ok());
  ASSERT_TRUE(fs_->Rename(tmp, path).ok());
  ASSERT_TRUE(fs_->SyncDir(dir_).ok());
  std::vector<std::string> names;
  ASSERT_TRUE(fs_->ListDir(dir_, &names).ok());
  EXPECT_THAT(names, ElementsAre("f"));

  auto appendable = fs_->NewAppendableFile(path);
  ASSERT_TRUE(appendable.ok());
  ASSERT_TRUE((*appendable)->Append("!").ok());
  std::string data;
  ASSERT_TRUE(fs_->ReadFile(path, &data).ok());
  EXPECT_EQ(data, "hello world!");
  ASSERT_TRUE(fs_->Truncate(path, 5).ok());
  EXPECT_EQ(*fs_->FileSize(path), 5u);
  auto reader = fs_->NewSequentialFile(path);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Read(3, &data).ok());
  EXPECT_EQ(data, "hel");
  ASSERT_TRUE((*reader)->Read(100, &data).ok());
  EXPECT_EQ(data, "lo");
  ASSERT_TRUE((*reader)->Read(100, &data).ok());
  EXPECT_EQ(data, "");
}

TEST_F(PosixFileSystemTest, PreallocatedZerosAreOverwrittenByAppendsNotAppendedTo) {
  const std::string path = JoinPath(dir_, "f");
  {
    auto file = fs_->NewWritableFile(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append("head").ok());
    ASSERT_TRUE((*file)->Preallocate(200 << 10).ok());  // several 64 KiB pieces
    ASSERT_TRUE((*file)->Sync().ok());
    EXPECT_EQ(*fs_->FileSize(path), 200u << 10);
    ASSERT_TRUE((*file)->Append("ab").ok());
    ASSERT_TRUE((*file)->Sync().ok());
  }
  std::string data;
  ASSERT_TRUE(fs_->ReadFile(path, &data).ok());
  ASSERT_EQ(data.size(), 200u << 10);
  EXPECT_EQ(data.substr(0, 6), "headab");
  EXPECT_TRUE(std::all_of(data.begin() + 6, data.end(), [](char c) { return c == 0; }));
  // Opened again, appends go on from the end of the file as it is.
  ASSERT_TRUE(fs_->Truncate(path, 6).ok());
  auto again = fs_->NewAppendableFile(path);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE((*again)->Preallocate(64).ok());
  ASSERT_TRUE((*again)->Append("cd").ok());
  ASSERT_TRUE(fs_->ReadFile(path, &data).ok());
  EXPECT_EQ(data, std::string("headabcd") + std::string(56, '\0'));
}

TEST_F(PosixFileSystemTest, ErrorsNameTheOperationThePathAndTheErrno) {
  const std::string missing = JoinPath(dir_, "missing");
  std::string data;
  absl::Status s = fs_->ReadFile(missing, &data);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(missing));
  EXPECT_THAT(s.message(), HasSubstr("No such file or directory"));
  s = fs_->Rename(missing, JoinPath(dir_, "x"));
  EXPECT_THAT(s.message(), HasSubstr("rename " + missing));
  EXPECT_EQ(fs_->FileSize(missing).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs_->SyncDir(missing).ok());
}

TEST_F(PosixFileSystemTest, CreateDirIsIdempotentButRefusesAFile) {
  const std::string sub = JoinPath(dir_, "sub");
  ASSERT_TRUE(fs_->CreateDir(sub).ok());
  EXPECT_TRUE(fs_->CreateDir(sub).ok());
  ASSERT_TRUE(fs_->NewWritableFile(JoinPath(dir_, "plain")).ok());
  EXPECT_FALSE(fs_->CreateDir(JoinPath(dir_, "plain")).ok());
  ::rmdir(sub.c_str());
}

TEST_F(PosixFileSystemTest, LogRoundTripsOnARealDirectory) {
  LogOptions options;
  options.dir = JoinPath(dir_, "wal");
  {
    auto log = Log::Open(options, nullptr);
    ASSERT_TRUE(log.ok()) << log.status();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE((*log)->AppendSync(1, std::to_string(i)).ok());
  }
  std::vector<std::string> replayed;
  auto log = Log::Open(options, [&](const Record& r) { replayed.push_back(r.payload); });
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(replayed, ElementsAre("0", "1", "2", "3", "4", "5", "6", "7", "8", "9"));
  log->reset();
  std::vector<std::string> names;
  ASSERT_TRUE(fs_->ListDir(options.dir, &names).ok());
  EXPECT_THAT(names, ElementsAre("0000000000000001.wal"));
  (void)fs_->Remove(JoinPath(options.dir, names[0]));
  ::rmdir(options.dir.c_str());
}

}  // namespace
}  // namespace txcoord::wal
