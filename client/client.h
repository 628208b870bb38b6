// The client side of a global transaction: a service begins it at the
// coordinator, runs its SQL through agents (AgentClient) with the txid, then
// commits or aborts it here. A typed wrapper over the Coordinator RPCs whose
// Commit settles the outcome itself (see Commit). Most services want the
// Transaction handle (client/transaction.h), which also remembers the
// agents a transaction used.
//
//   txcoord::Client coordinator("127.0.0.1:7000");
//   absl::StatusOr<std::string> txid = coordinator.Begin(absl::Seconds(30));
//   ...  // AgentClient::Execute(*txid, ...) on each service's agent
//   absl::StatusOr<txcoord::CommitResult> result = coordinator.Commit(*txid);
//   if (result.ok() && !result->committed) std::cerr << "aborted: " << result->reason;
//
// Which calls may be repeated (docs/protocol.md, "Writing a client"):
//   Begin           yes: an unused txid aborts at its deadline.
//   Commit          yes (idempotent); Commit itself repeats a call whose
//                   answer was lost until the outcome is known.
//   Abort           yes (idempotent).
//   GetTransaction  yes (read only).
#ifndef TXCOORD_CLIENT_CLIENT_H_
#define TXCOORD_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "txcoord/v1/txcoord.pb.h"

namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace txcoord {

class Transaction;    // client/transaction.h
class FramedChannel;  // rpc/framed_channel.h

namespace cluster {
class CoordinatorDirectory;  // cluster/coordinator_directory.h
}  // namespace cluster

struct ClientOptions {
  // Deadline of Begin, Abort and GetTransaction.
  absl::Duration call_timeout = absl::Seconds(10);
  // Deadline of Commit. Commit waits for every branch's vote, so this must
  // exceed the coordinator's --prepare_timeout (5s by default) plus a log
  // sync; otherwise the client gives up on a commit that is still deciding.
  absl::Duration commit_timeout = absl::Seconds(30);
  // Wait for the coordinator to become reachable (up to the deadline)
  // instead of failing at once with UNAVAILABLE. Keep it on: a fail-fast
  // channel sees a restarted coordinator as unreachable for up to ~20s
  // (gRPC's reconnect backoff), while every call still has its deadline.
  bool wait_for_ready = true;
  // How long Commit keeps asking again when a call's answer is lost
  // (UNAVAILABLE, DEADLINE_EXCEEDED, ...): it returns once the outcome is
  // known, or this long after it was called (kUnknown). Zero: one call,
  // its error returned as is.
  absl::Duration settle_timeout = absl::Seconds(60);
  // Txids to reserve at a time (ReserveTxids, at most 1024). Begin then
  // hands out txids from a block reserved at the coordinator, so that most
  // transactions make no Begin call (docs/protocol.md, "Reserved txids").
  // Such a transaction begins at the coordinator on its first Enlist (the
  // first Execute that writes) or Commit, and its timeout counts from
  // then; a txid is handed out only in the first half of its
  // reservation's life (60 s by default), and its first write or Commit
  // must come before the reservation ends, or the transaction fails as one
  // the coordinator does not know. One block at a time: a Begin with
  // another timeout while it lasts calls Begin; the block is dropped when
  // the coordinator turns out not to know it (restart, takeover, drain).
  // 0: every Begin calls the coordinator. A coordinator without
  // ReserveTxids gets Begin calls.
  uint32_t reserve_txids = 0;
  // Most txids one ReserveTxids call may reserve.
  static constexpr uint32_t kMaxReservedTxids = 1024;
  // What times a reserved block's hand-out window: a clock that never
  // steps. Empty: std::chrono::steady_clock::now (tests set their own).
  std::function<std::chrono::steady_clock::time_point()> steady_now;
  // TLS credentials (e.g. txcoord::ChannelCredentials from rpc/tls.h):
  // the constructor that takes a target then opens a channel of its own
  // with them. nullptr: the shared insecure channel.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // The coordinator's framed port (its --framed_listen): Commit then goes
  // over plain framed TCP instead of gRPC, costing both ends less CPU
  // (docs/protocol.md, "The framed port"), with the same answers; every
  // other call stays on gRPC. Ignored (Commit over gRPC) with
  // `credentials`, which the framed port cannot honour, and by a Client of
  // a coordinator directory, whose Commit goes to each txid's owner. Empty
  // (the default): Commit over gRPC.
  std::string framed_address;
};

// What Commit decided.
struct CommitResult {
  bool committed = false;
  // Why the transaction aborted (a branch's NO vote, a timeout, ...); empty
  // when committed.
  std::string reason;
};

// A branch a Commit names (CommitRequest.branches): what its Execute
// reported (ExecuteResult::participant and ::branch_token).
struct NamedBranch {
  std::string participant;
  uint64_t branch_token = 0;
  // The branch's signed YES vote and the endpoint it was signed with
  // (ExecuteResult::vote_proof, ::endpoint); empty when its vote went by
  // Enlist.
  std::string endpoint;
  std::string vote_proof;
};

// What Begin started.
struct BeginResult {
  std::string txid;
  // The coordinator checks the branches a Commit names, so Executes may be
  // sent with ExecuteOptions::named_in_commit (Transaction does this).
  bool checks_named_branches = false;
};

// True for Commit's "outcome of TXID unknown" (absl::StatusCode::kUnknown):
// the transaction may have committed or aborted, and the coordinator did
// not answer within settle_timeout. Call Commit (or GetTransaction) again
// later; never assume either outcome.
bool IsOutcomeUnknown(const absl::Status& status);

// Thread-safe: all methods may be called concurrently. Cheap to keep one
// per coordinator for the process lifetime.
// Errors are the coordinator's statuses (see txcoord.proto): e.g. NOT_FOUND
// for a txid it never issued, INVALID_ARGUMENT for a malformed one,
// OUT_OF_RANGE for one that ended longer ago than the coordinator keeps
// outcomes, UNAVAILABLE when the coordinator cannot be reached.
class Client final {
 public:
  // Talks to `target` ("host:port") over the process's shared insecure
  // channel to it (SharedChannel), or over a TLS channel of its own with
  // options.credentials.
  explicit Client(const std::string& target, ClientOptions options = {});
  // Talks over `channel` (e.g. one with TLS credentials). Shares ownership.
  explicit Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options = {});
  // Talks to several coordinators found through `directory` (e.g. a
  // cluster::RegistryCoordinatorDirectory, docs/cluster.md): Begin goes to
  // the coordinator the directory picks, and every later call for a txid
  // to the coordinator that issued it. Begin does not wait for an
  // unreachable coordinator: it tries up to kBeginAttempts others first.
  explicit Client(std::shared_ptr<cluster::CoordinatorDirectory> directory,
                  ClientOptions options = {});
  static constexpr int kBeginAttempts = 3;
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a global transaction that aborts unless decided within
  // `timeout`; zero means the coordinator's --tx_timeout. With a directory,
  // an UNAVAILABLE coordinator is skipped for another. `timeout` is
  // rounded up to whole milliseconds and must be at most one hour.
  // Returns the txid.
  [[nodiscard]] absl::StatusOr<std::string> Begin(absl::Duration timeout = absl::ZeroDuration());
  // Begin, also telling what the coordinator supports.
  [[nodiscard]] absl::StatusOr<BeginResult> BeginWith(
      absl::Duration timeout = absl::ZeroDuration());

  // Begin, returning a handle that remembers the agents the transaction
  // uses (include client/transaction.h). This Client must outlive it.
  [[nodiscard]] absl::StatusOr<Transaction> BeginTransaction(
      absl::Duration timeout = absl::ZeroDuration());

  // Runs two-phase commit and returns the decision: committed (durable at
  // the coordinator; every branch will apply it) or aborted with a reason.
  // When a call's answer is lost (UNAVAILABLE, DEADLINE_EXCEEDED,
  // CANCELLED, UNKNOWN, INTERNAL), Commit calls again (the RPC is
  // idempotent), with backoff from 50ms doubling to 2s and jitter, until
  // the coordinator answers or settle_timeout passes; each call's deadline
  // is commit_timeout, cut to what is left. Still no answer: a kUnknown
  // status "outcome of TXID unknown: ..." naming the last error
  // (IsOutcomeUnknown). Other errors are the coordinator's answer and are
  // returned as they are: e.g. OUT_OF_RANGE (the outcome expired: check
  // the databases), NOT_FOUND, FAILED_PRECONDITION.
  [[nodiscard]] absl::StatusOr<CommitResult> Commit(const std::string& txid);
  // Commit of the branches named (each participant once, as its Executes
  // with named_in_commit reported it; docs/protocol.md): a branch enlisted
  // for such an Execute but not named, or any named under another token,
  // aborts the transaction; one named but not yet enlisted is waited for;
  // one enlisted before its Execute answered (sent without
  // named_in_commit, or by an agent that predates it) is kept unnamed.
  // Empty: Commit(txid).
  [[nodiscard]] absl::StatusOr<CommitResult> Commit(const std::string& txid,
                                                    const std::vector<NamedBranch>& branches);

  // Aborts a transaction that is not yet decided; OK for one already
  // aborted. FAILED_PRECONDITION once it is decided COMMIT. Idempotent:
  // on UNAVAILABLE or DEADLINE_EXCEEDED, call it again. Reaches only the
  // branches the coordinator knows; Transaction::Abort also releases the
  // others.
  [[nodiscard]] absl::Status Abort(const std::string& txid);
  // The same, naming the branches written through: those with a signed
  // vote (whose agents sent no Enlist) then hear the Abort too.
  [[nodiscard]] absl::Status Abort(const std::string& txid,
                                   const std::vector<NamedBranch>& branches);

  // The coordinator's view of a transaction: state, branches, votes and
  // phase-2 progress. Read only: repeat freely.
  [[nodiscard]] absl::StatusOr<v1::Transaction> GetTransaction(const std::string& txid);

 private:
  // One Commit call with `timeout`. `*lost` tells whether it failed
  // without an answer from the coordinator (worth calling again).
  absl::StatusOr<CommitResult> CommitOnce(const std::string& txid,
                                          const std::vector<NamedBranch>& branches,
                                          absl::Duration timeout, bool* lost);

  // A txid from the block of reserved ones, reserving one if needed;
  // nullopt if there is none to hand out (the caller then calls Begin), or
  // the error of a reservation that Begin would meet as well (a single
  // coordinator that stayed unreachable within call_timeout).
  absl::StatusOr<std::optional<BeginResult>> TakeReserved(uint32_t timeout_ms);

  // A call on `txid` failed with `status` (or Commit answered ABORTED with
  // it as the reason): if it says the coordinator does not know the txid,
  // or (`from_coordinator`) the coordinator cannot be reached, the
  // reserved block `txid` came from is dropped.
  void NoteRefused(const std::string& txid, const absl::Status& status, bool from_coordinator);
  // The coordinator answered a call on `txid` from `coordinator_epoch`: a
  // reserved block of that cluster from an earlier epoch is dropped.
  void NoteEpoch(const std::string& txid, uint64_t coordinator_epoch);
  friend class Transaction;  // notes its agents' refusals too

  class Stub;
  struct Reserved;
  const ClientOptions options_;
  const std::unique_ptr<Stub> stub_;
  const std::unique_ptr<Reserved> reserved_;
  const std::unique_ptr<FramedChannel> framed_;  // nullptr: no framed address
};

}  // namespace txcoord

#endif  // TXCOORD_CLIENT_CLIENT_H_
