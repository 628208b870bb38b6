// The data path of a service: runs SQL through its participant agent
// (`txagent`), inside the branch of a global transaction or, with an empty
// txid, as a local autocommit batch. A typed wrapper over Agent.Execute.
//
//   txcoord::AgentClient orders("127.0.0.1:7101");
//   absl::StatusOr<txcoord::SqlResult> r = orders.ExecuteOne(
//       txid, "UPDATE stock SET n = n - ?1 WHERE sku = ?2 AND n >= ?1", {int64_t{2}, "A-17"});
//   if (r.ok() && r->changes == 0) { /* not enough stock: abort */ }
//
// Which calls may be repeated (docs/protocol.md, "Writing a client"):
//   Execute with a txid   no, not after UNAVAILABLE or DEADLINE_EXCEEDED
//                         (whether it ran is unknown): abort and retry the
//                         whole transaction. ABORTED: the same.
//   Execute, no txid      only if the batch is safe to run twice.
//   Release               yes (idempotent).
#ifndef TXCOORD_CLIENT_AGENT_CLIENT_H_
#define TXCOORD_CLIENT_AGENT_CLIENT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/sql_value.h"
#include "txcoord/v1/txcoord.pb.h"

namespace grpc {
class Channel;
class ChannelCredentials;
class ClientContext;
}  // namespace grpc

namespace txcoord {

struct AgentClientOptions {
  // Deadline of an Execute, on top of any lock wait it asks for.
  absl::Duration call_timeout = absl::Seconds(10);
  // Wait for the agent to become reachable (up to the deadline) instead of
  // failing at once with UNAVAILABLE. Keep it on: a fail-fast channel sees
  // a restarted agent as unreachable for up to ~20s (gRPC's reconnect
  // backoff), while every call still has its deadline.
  bool wait_for_ready = true;
  // TLS credentials (e.g. txcoord::ChannelCredentials from rpc/tls.h):
  // the constructor that takes a target then opens a channel of its own
  // with them. nullptr: the shared insecure channel.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The agent's framed port (its --framed_listen): Execute then goes over
  // plain framed TCP instead of gRPC, each call costing the agent and this
  // process less CPU (docs/protocol.md, "The framed port"); the same
  // statuses come back. Release and Publish stay on gRPC. Ignored (every
  // call over gRPC) with `credentials`, which the framed port cannot
  // honour. Empty (the default): every call over gRPC.
  std::string framed_address;
};

// A transactional message (docs/messaging.md): published to the broker
// subject `topic` once the transaction commits, never if it aborts.
struct Message {
  std::string topic;  // tokens of [A-Za-z0-9_-] joined by '.'
  std::string key;    // same key: delivered in commit order; empty: no order
  std::string payload;
  std::vector<std::pair<std::string, std::string>> headers;  // not Nats-*/Txcoord-*
};

struct ExecuteOptions {
  // Early prepare: after the statements, the agent prepares the branch
  // durably and reports its YES vote, so Commit skips this branch's Prepare.
  // This must be the branch's last Execute. Requires a txid. ABORTED then
  // may mean the coordinator never got the vote: do not Commit; Abort and
  // retry the whole transaction.
  bool prepare = false;
  // How long a write may wait for another branch's row lock before the call
  // fails with ABORTED. Zero means the agent's --lock_timeout; at most 60s.
  absl::Duration lock_timeout = absl::ZeroDuration();
  // Messages added to the branch after the statements (statements may then
  // be empty).
  std::vector<Message> messages;
  // The caller names the branch in its Commit (Client::Commit with
  // NamedBranch, from this call's participant and branch_token): the agent
  // answers without waiting for the coordinator to acknowledge the
  // branch's enlistment or vote. Only with a coordinator whose Begin said
  // checks_named_branches. Transaction sets it itself.
  bool named_in_commit = false;
  // With named_in_commit and prepare: the caller carries the branch's
  // signed vote (ExecuteResult::vote_proof) in its Commit, so the agent may
  // sign it instead of sending an Enlist (docs/protocol.md, "Signed
  // votes"). Transaction sets it with named_in_commit.
  bool carries_vote_proof = false;
};

struct ExecuteResult {
  std::vector<SqlResult> results;  // one per statement, in order
  // With prepare: VOTE_YES, or VOTE_READ_ONLY if the branch wrote nothing.
  v1::Vote vote = v1::VOTE_UNSPECIFIED;
  std::vector<std::string> message_ids;  // of options.messages, in order
  // The branch written in, once it has written: what a Commit names.
  std::string participant;
  uint64_t branch_token = 0;  // 0: nothing written there yet
  // With carries_vote_proof: the signed YES vote and the endpoint it was
  // signed with, to name in Commit (NamedBranch). Empty: the vote went to
  // the coordinator by Enlist.
  std::string vote_proof;
  std::string endpoint;
};

// What Release did at the agent.
struct ReleaseResult {
  // An unprepared branch was rolled back. false: the agent had no branch
  // of the txid (never written there, or already ended), or it is
  // prepared and left to the coordinator.
  bool released = false;
  std::string detail;  // which, in words
};

// Thread-safe: all methods may be called concurrently. Immutable after
// construction. Errors are the agent's statuses (see txcoord.proto): notably
// ABORTED (lock timeout, or the transaction no longer accepts the branch:
// abort and retry the whole transaction) and INVALID_ARGUMENT (bad SQL; the
// message is SQLite's). A failed call leaves the branch as it was before,
// except UNAVAILABLE / DEADLINE_EXCEEDED inside a transaction: whether the
// statements ran is then unknown, so do not resend them (a debit would run
// twice); abort and retry the whole transaction. A first call after the
// agent restarted may fail with UNAVAILABLE on the dead connection.
// Release is idempotent: repeat it freely.
class FramedChannel;

class AgentClient final {
 public:
  // Talks to the agent at `target` ("host:port") over the process's shared
  // insecure channel to it (SharedChannel), or over a TLS channel of its
  // own with options.credentials.
  explicit AgentClient(const std::string& target, AgentClientOptions options = {});
  // Talks over `channel` (e.g. one with TLS credentials). Shares ownership.
  explicit AgentClient(std::shared_ptr<grpc::Channel> channel, AgentClientOptions options = {});
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Runs `statements` in order in the branch of `txid` (empty: one local
  // autocommit transaction). 1 to 256 statements.
  [[nodiscard]] absl::StatusOr<ExecuteResult> Execute(const std::string& txid,
                                                      const std::vector<SqlStatement>& statements,
                                                      const ExecuteOptions& options = {});

  // One statement with positional parameters (?1, ?2, ...).
  [[nodiscard]] absl::StatusOr<SqlResult> ExecuteOne(const std::string& txid,
                                                     const std::string& sql,
                                                     const std::vector<SqlValue>& params = {},
                                                     const ExecuteOptions& options = {});

  // Rolls back this agent's unprepared branch of `txid` at once, freeing
  // its row locks (the agent does the same by itself after its
  // --branch_idle_timeout). Never touches a prepared branch; safe at any
  // time, and idempotent: repeat it freely. Released before Commit, the
  // transaction aborts. Errors: INVALID_ARGUMENT (empty or malformed txid),
  // UNAVAILABLE / DEADLINE_EXCEEDED (call it again).
  [[nodiscard]] absl::StatusOr<ReleaseResult> Release(const std::string& txid);

  // Adds `messages` to the branch of `txid` (empty: commits them at once as
  // a local transaction). Returns their ids. INVALID_ARGUMENT names a
  // message that breaks a rule (topic, sizes, UTF-8); nothing is added then.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Publish(
      const std::string& txid, const std::vector<Message>& messages);

 private:
  friend class ExecuteRound;
  class Stub;
  // Execute's deadline (its lock timeout included) and wait-for-ready.
  void PrepareContext(grpc::ClientContext* context, const ExecuteOptions& options) const;
  absl::Duration CallTimeout(const ExecuteOptions& options) const {
    return options_.call_timeout + options.lock_timeout;
  }

  const AgentClientOptions options_;
  const std::unique_ptr<Stub> stub_;
  const std::unique_ptr<FramedChannel> framed_;  // nullptr: no framed address
};

// Executes at several agents at once, waited for on the calling thread:
// Wait polls the round's own completion queue, so when that thread is the
// one polling (as with one client thread), it reads the answers itself
// and no gRPC thread is woken to hand them over; with other threads
// polling too, one of them may read an answer and wake it. Lets one
// thread run a transaction's branches at several agents at once
// (Transaction::ExecuteAll). Not thread-safe: one thread starts and
// waits. Call Wait soon after the Starts: calls make progress only while
// some thread polls.
//
//   ExecuteRound round;
//   round.Start(payments, txid, debit, options);
//   round.Start(orders, txid, insert, options);
//   std::vector<absl::StatusOr<ExecuteResult>> results = round.Wait();  // in Start order
class ExecuteRound final {
 public:
  ExecuteRound();
  // Cancels calls still in flight and waits for them to end.
  ~ExecuteRound();
  ExecuteRound(const ExecuteRound&) = delete;
  ExecuteRound& operator=(const ExecuteRound&) = delete;

  // Sends what agent.Execute would send. A request refused before it is
  // sent (a lock timeout outside [0, 60s], say) is answered by Wait with
  // that error. Not after Wait.
  void Start(AgentClient& agent, const std::string& txid,
             const std::vector<SqlStatement>& statements, const ExecuteOptions& options);

  // Waits for every call started, then returns each one's result, what
  // Execute would have returned, in the order of Start. Call once.
  [[nodiscard]] std::vector<absl::StatusOr<ExecuteResult>> Wait();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace txcoord

#endif  // TXCOORD_CLIENT_AGENT_CLIENT_H_
