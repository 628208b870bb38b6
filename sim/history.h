// What happened in a simulation run, as far as the checker needs it: every
// transaction a client began with the writes it meant to make, what the
// client was told, and every decision the coordinator announced. Decisions
// that contradict each other are violations the moment they happen.
#ifndef TXCOORD_SIM_HISTORY_H_
#define TXCOORD_SIM_HISTORY_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sim/event_loop.h"

namespace txcoord::sim {

// One account change at one participant.
struct Write {
  int64_t account = 0;
  int64_t delta = 0;
  bool operator==(const Write& o) const { return account == o.account && delta == o.delta; }
  bool operator<(const Write& o) const {
    return account != o.account ? account < o.account : delta < o.delta;
  }
};

enum class Told { kNothing, kCommitted, kAborted };

struct TxnRecord {
  std::string txid;
  int client = 0;
  std::map<std::string, std::vector<Write>> writes;  // participant -> planned writes
  bool commit_sent = false;  // the client called Commit (only after every Execute succeeded)
  Told told = Told::kNothing;
  std::string told_reason;
};

// Not thread-safe. `loop` must outlive it (violations carry the time).
class History final {
 public:
  explicit History(EventLoop* loop) : loop_(loop) {}

  TxnRecord& Begin(const std::string& txid, int client);
  TxnRecord* Find(const std::string& txid);
  const std::map<std::string, TxnRecord>& txns() const { return txns_; }

  // The client heard the outcome of Commit (or an Abort succeeded).
  void ClientTold(const std::string& txid, bool committed, const std::string& reason);
  // The coordinator (any incarnation) announced a decision.
  void CoordinatorDecided(const std::string& txid, bool committed);
  // The coordinator answered a participant's QueryOutcome.
  void OutcomeAnswered(const std::string& txid, const std::string& participant, bool committed);

  void Violation(const std::string& what);
  const std::vector<std::string>& violations() const { return violations_; }
  // The trace as it was when the first violation was found (empty if none).
  const std::vector<std::string>& trace_at_first_violation() const { return first_trace_; }

 private:
  EventLoop* const loop_;
  std::map<std::string, TxnRecord> txns_;
  std::map<std::string, bool> decided_;  // txid -> committed
  std::map<std::pair<std::string, std::string>, bool> answered_;
  std::vector<std::string> violations_;
  std::vector<std::string> first_trace_;
};

}  // namespace txcoord::sim

#endif  // TXCOORD_SIM_HISTORY_H_
