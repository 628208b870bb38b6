// A fresh directory for one test's or one demo run's files (databases, WAL,
// daemon logs), removed with everything in it when the owner goes away.
//
//   absl::StatusOr<txcoord::testing::TempDir> dir = TempDir::Create("bank");
//   std::string db = dir->Path("a.db");
#ifndef TXCOORD_HARNESS_TEMP_DIR_H_
#define TXCOORD_HARNESS_TEMP_DIR_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace txcoord::testing {

// Move-only. Not thread-safe (plain value).
class TempDir final {
 public:
  // Creates $TEST_TMPDIR/txcoord-<prefix>-XXXXXX (or under $TMPDIR, else
  // /tmp) with mode 0700.
  static absl::StatusOr<TempDir> Create(const std::string& prefix);
  // Removes the directory recursively unless Keep() was called. Errors are
  // ignored: a leftover temp directory must not fail a test.
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `path()/name`.
  std::string Path(const std::string& name) const;
  // Leaves the directory in place on destruction (e.g. to look at logs after
  // a failure).
  void Keep() { keep_ = true; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  void Remove();

  std::string path_;  // empty once moved from
  bool keep_ = false;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_TEMP_DIR_H_
