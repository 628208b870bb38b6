// Runs the real `txctl` binary as a child process, the way an operator or a
// script would, and captures its exit code, stdout and stderr.
//
//   TxctlResult r = RunTxctl({"list", "--coordinator=" + address, "--json"});
//   EXPECT_EQ(r.exit_code, 0) << r;
#ifndef TXCOORD_TESTS_OPERATORS_TXCTL_RUNNER_H_
#define TXCOORD_TESTS_OPERATORS_TXCTL_RUNNER_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace txcoord::testing {

// $TXCTL_BIN if set, else BUILD/cli/txctl next to the other binaries.
absl::StatusOr<std::string> TxctlBinary();

struct TxctlResult {
  int exit_code = -1;  // -1 if it did not exit normally (or could not start)
  std::string out;
  std::string err;
  std::string command;  // for messages
};
std::ostream& operator<<(std::ostream& os, const TxctlResult& result);

// Runs txctl with `args`; kills it if it runs longer than a minute (every
// call it makes has its own --timeout, so that means a hang).
TxctlResult RunTxctl(const std::vector<std::string>& args);

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_OPERATORS_TXCTL_RUNNER_H_
