// The client side of a global transaction: a service begins it at the
// coordinator, runs its SQL through agents (AgentClient) with the txid, then
// commits or aborts it here. A thin, typed wrapper over the Coordinator RPCs.
//
//   txcoord::Client coordinator("127.0.0.1:7000");
//   absl::StatusOr<std::string> txid = coordinator.Begin(absl::Seconds(30));
//   ...  // AgentClient::Execute(*txid, ...) on each service's agent
//   absl::StatusOr<txcoord::CommitResult> result = coordinator.Commit(*txid);
//   if (result.ok() && !result->committed) std::cerr << "aborted: " << result->reason;
#ifndef TXCOORD_CLIENT_CLIENT_H_
#define TXCOORD_CLIENT_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "txcoord/v1/txcoord.pb.h"

namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace txcoord {

struct ClientOptions {
  // Deadline of Begin, Abort and GetTransaction.
  absl::Duration call_timeout = absl::Seconds(10);
  // Deadline of Commit. Commit waits for every branch's vote, so this must
  // exceed the coordinator's --prepare_timeout (5s by default) plus a log
  // sync; otherwise the client gives up on a commit that is still deciding.
  absl::Duration commit_timeout = absl::Seconds(30);
  // Wait for the coordinator to become reachable (up to the deadline)
  // instead of failing at once with UNAVAILABLE, e.g. across its restart.
  bool wait_for_ready = false;
  // TLS credentials (e.g. txcoord::ChannelCredentials from common/tls.h):
  // the constructor that takes a target then opens a channel of its own
  // with them. nullptr: the shared insecure channel.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// What Commit decided.
struct CommitResult {
  bool committed = false;
  // Why the transaction aborted (a branch's NO vote, a timeout, ...); empty
  // when committed.
  std::string reason;
};

// Thread-safe: all methods may be called concurrently. Immutable after
// construction; cheap to keep one per coordinator for the process lifetime.
// Errors are the coordinator's statuses (see txcoord.proto): e.g. NOT_FOUND
// for an unknown txid, INVALID_ARGUMENT for a malformed one, UNAVAILABLE
// when the coordinator cannot be reached (retry the call).
class Client final {
 public:
  // Talks to `target` ("host:port") over the process's shared insecure
  // channel to it (SharedChannel), or over a TLS channel of its own with
  // options.credentials.
  explicit Client(const std::string& target, ClientOptions options = {});
  // Talks over `channel` (e.g. one with TLS credentials). Shares ownership.
  explicit Client(std::shared_ptr<grpc::Channel> channel, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a global transaction that aborts unless decided within
  // `timeout`; zero means the coordinator's --tx_timeout. `timeout` is
  // rounded up to whole milliseconds and must be at most one hour.
  // Returns the txid.
  [[nodiscard]] absl::StatusOr<std::string> Begin(absl::Duration timeout = absl::ZeroDuration());

  // Runs two-phase commit and returns the decision: committed (durable at
  // the coordinator; every branch will apply it) or aborted with a reason.
  // An error means the outcome is unknown to this caller (e.g.
  // DEADLINE_EXCEEDED): Commit is idempotent, so call it again, or ask
  // GetTransaction.
  [[nodiscard]] absl::StatusOr<CommitResult> Commit(const std::string& txid);

  // Aborts a transaction that is not yet decided. Idempotent.
  [[nodiscard]] absl::Status Abort(const std::string& txid);

  // The coordinator's view of a transaction: state, branches, votes and
  // phase-2 progress.
  [[nodiscard]] absl::StatusOr<v1::Transaction> GetTransaction(const std::string& txid);

 private:
  class Stub;
  const ClientOptions options_;
  const std::unique_ptr<Stub> stub_;
};

}  // namespace txcoord

#endif  // TXCOORD_CLIENT_CLIENT_H_
