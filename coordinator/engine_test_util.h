// Shared by the engine's unit tests: a fixed clock reading, picking actions
// of one kind, and beginning a transaction with enlisted branches.
#ifndef TXCOORD_COORDINATOR_ENGINE_TEST_UTIL_H_
#define TXCOORD_COORDINATOR_ENGINE_TEST_UTIL_H_

#include <string>
#include <variant>
#include <vector>

#include "coordinator/engine.h"
#include "gtest/gtest.h"

namespace txcoord::coordinator::testing {

inline const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

// The options the engine's unit tests run with: cluster c1, epoch 7, a 5 s
// prepare timeout, a 30 s default transaction timeout.
inline EngineOptions TestEngineOptions() {
  EngineOptions options;
  options.cluster_id = "c1";
  options.epoch = 7;
  options.prepare_timeout = absl::Seconds(5);
  options.default_tx_timeout = absl::Seconds(30);
  return options;
}

// The actions of type T in `actions`, in order.
template <typename T>
std::vector<T> Only(const Actions& actions) {
  std::vector<T> found;
  for (const Action& a : actions) {
    if (const T* t = std::get_if<T>(&a)) found.push_back(*t);
  }
  return found;
}

// Begins a transaction at `at` and enlists `participants` (p at
// "host-p:1", no token); returns its txid.
inline std::string BeginWith(Engine& engine, const std::vector<std::string>& participants,
                             absl::Time at = kT0) {
  Actions out;
  absl::StatusOr<BeginResult> begun = engine.Begin(absl::ZeroDuration(), at, &out);
  EXPECT_TRUE(begun.ok()) << begun.status();
  if (!begun.ok()) return "";
  for (const std::string& p : participants) {
    EXPECT_TRUE(engine.Enlist(begun->txid, {p, "host-" + p + ":1"}, false, at, &out).ok());
  }
  return begun->txid;
}

}  // namespace txcoord::coordinator::testing

#endif  // TXCOORD_COORDINATOR_ENGINE_TEST_UTIL_H_
