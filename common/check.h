// Invariant checks: a condition the code relies on, stated where it holds
// and tested there on every run. A violated one logs file:line, the
// condition and a message, then aborts the process.
//
//   // Invariant: a COMMIT record is logged once per transaction.
//   TXCOORD_CHECK(!txn.logging) << "txid=" << txid << " COMMIT logged twice";
//   TXCOORD_DCHECK(ConsistentLocked()) << "lock table";  // expensive: see below
//
// Why abort rather than return an error: a check states what the code
// itself guarantees, never what a peer, a client or a file may send (a late
// or duplicate reply, an unknown txid, a corrupt record are errors, and are
// answered as such). When one fails, the in-memory state of the coordinator
// or agent is wrong in a way nobody planned for, and any decision taken from
// it may be wrong too: a commit announced for a branch that never voted, an
// abort after COMMIT was logged. Stopping is safe, deciding is not. Both
// daemons recover from what is durable (the coordinator's WAL, the agent's
// SQLite file) when restarted, and presumed abort covers whatever was in
// flight. So checks stay on in production builds; only the few whose cost
// grows with the state (a scan of a table) are DCHECKs, compiled in debug
// builds and fuzz builds (TXCOORD_DCHECK_ALWAYS_ON) and out elsewhere.
//
// Tests that trip a check on purpose use EXPECT_DEATH with the condition's
// text (docs/testing.md).
#ifndef TXCOORD_COMMON_CHECK_H_
#define TXCOORD_COMMON_CHECK_H_

#include <sstream>

#include "absl/base/optimization.h"

namespace txcoord::internal {

// Collects the message of one failed check; its destructor logs it and
// aborts. Only the macros below create one.
class CheckFailure final {
 public:
  CheckFailure(const char* file, int line, const char* condition)
      : file_(file), line_(line), condition_(condition) {}
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  const char* file_;
  int line_;
  const char* condition_;
  std::ostringstream stream_;
};

}  // namespace txcoord::internal

// Always on. `condition` is evaluated once; the streamed message only when
// it is false.
#define TXCOORD_CHECK(condition)           \
  while (ABSL_PREDICT_FALSE(!(condition))) \
  ::txcoord::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#if !defined(NDEBUG) || defined(TXCOORD_DCHECK_ALWAYS_ON)
#define TXCOORD_DCHECK(condition) TXCOORD_CHECK(condition)
#define TXCOORD_DCHECK_IS_ON() true
#else
// Compiled (so that it keeps compiling) but never evaluated.
#define TXCOORD_DCHECK(condition) \
  while (false && (condition))    \
  ::txcoord::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()
#define TXCOORD_DCHECK_IS_ON() false
#endif

#endif  // TXCOORD_COMMON_CHECK_H_
