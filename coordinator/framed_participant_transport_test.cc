// FramedParticipantTransport against a real FrameServer with a fake
// participant behind it: calls go framed once an endpoint is noted, their
// answers read as the gRPC transport reads them; a framed port that is
// gone sends the call to the fallback with the time left and is held
// down; a call that may have reached the agent is not sent again; an
// agent's own error, UNAVAILABLE included, is its answer; a participant
// that does not answer holds only its own calls; idle threads end with
// their connections. The daemons' use of it is tested in
// tests/integration/framed_port_test.cc.
#include "coordinator/framed_participant_transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/tcp_listener.h"
#include "gtest/gtest.h"
#include "harness/call_gate.h"
#include "harness/eventually.h"
#include "rpc/frame.h"
#include "rpc/frame_handler.h"
#include "rpc/frame_server.h"
#include "txcoord/v1/txcoord.pb.h"

namespace txcoord::coordinator {
namespace {

using txcoord::testing::CallGate;
using txcoord::testing::Eventually;

constexpr absl::Duration kTimeout = absl::Seconds(10);
constexpr char kEndpoint[] = "127.0.0.1:7001";  // the participant's gRPC endpoint (never dialled)

// Votes YES for txids ending in "y", READ_ONLY for "r", NO otherwise;
// commits of txids ending in "f" fail FAILED_PRECONDITION, of txids ending
// in "u" UNAVAILABLE (as a busy SQLite file makes them); one-phase
// commits abort txids ending in "a". Each call passes its gate first.
class FakeFramedParticipant {
 public:
  FakeFramedParticipant() {
    server_ = *FrameServer::Start({"fake agent framed", "127.0.0.1:0", 64}, Handler());
  }
  ~FakeFramedParticipant() { Stop(); }
  void Stop() {
    if (server_ != nullptr) server_->Stop(absl::InfiniteFuture());
  }

  const std::string& address() const { return server_->address(); }
  uint64_t calls() const { return server_->calls(); }
  int open_connections() const { return server_->open_connections(); }
  CallGate& gate() { return gate_; }

 private:
  static v1::Vote VoteFor(const std::string& txid) {
    if (absl::EndsWith(txid, "y")) return v1::VOTE_YES;
    if (absl::EndsWith(txid, "r")) return v1::VOTE_READ_ONLY;
    return v1::VOTE_NO;
  }

  FrameServer::Handler Handler() {
    auto branch = [this](const char* name) {
      return [this, name](const v1::BranchRequest& request, absl::Time, v1::BranchResponse*) {
        gate_.Arrive(std::string(name) + " " + request.txid());
        if (absl::EndsWith(request.txid(), "f")) {
          return absl::FailedPreconditionError("not prepared here");
        }
        if (absl::EndsWith(request.txid(), "u")) return absl::UnavailableError("database is busy");
        return absl::OkStatus();
      };
    };
    return FrameMethods({
        {FrameMethod::kParticipantPrepare,
         UnaryFrameHandler<v1::PrepareRequest, v1::PrepareResponse>(
             FrameMethod::kParticipantPrepare, "/txcoord.v1.Participant/Prepare", nullptr, nullptr,
             [this](const v1::PrepareRequest& request, absl::Time, v1::PrepareResponse* response) {
               gate_.Arrive("Prepare " + request.txid());
               response->set_vote(VoteFor(request.txid()));
               if (response->vote() == v1::VOTE_NO) response->set_reason("unknown branch");
               return absl::OkStatus();
             })},
        {FrameMethod::kParticipantCommit,
         UnaryFrameHandler<v1::BranchRequest, v1::BranchResponse>(
             FrameMethod::kParticipantCommit, "/txcoord.v1.Participant/Commit", nullptr, nullptr,
             branch("Commit"))},
        {FrameMethod::kParticipantAbort,
         UnaryFrameHandler<v1::BranchRequest, v1::BranchResponse>(
             FrameMethod::kParticipantAbort, "/txcoord.v1.Participant/Abort", nullptr, nullptr,
             branch("Abort"))},
        {FrameMethod::kParticipantCommitOnePhase,
         UnaryFrameHandler<v1::BranchRequest, v1::CommitOnePhaseResponse>(
             FrameMethod::kParticipantCommitOnePhase, "/txcoord.v1.Participant/CommitOnePhase",
             nullptr, nullptr,
             [this](const v1::BranchRequest& request, absl::Time,
                    v1::CommitOnePhaseResponse* response) {
               gate_.Arrive("CommitOnePhase " + request.txid());
               response->set_outcome(absl::EndsWith(request.txid(), "a") ? v1::OUTCOME_ABORTED
                                                                         : v1::OUTCOME_COMMITTED);
               return absl::OkStatus();
             })},
        {FrameMethod::kParticipantBatch,
         UnaryFrameHandler<v1::BatchRequest, v1::BatchResponse>(
             FrameMethod::kParticipantBatch, "/txcoord.v1.Participant/Batch", nullptr, nullptr,
             [this](const v1::BatchRequest& request, absl::Time, v1::BatchResponse* response) {
               gate_.Arrive("Batch " + std::to_string(request.entries_size()));
               for (const v1::BatchRequest::Entry& entry : request.entries()) {
                 v1::BatchResponse::Answer* answer = response->add_answers();
                 if (entry.kind() == v1::BatchRequest::KIND_PREPARE) {
                   answer->set_vote(VoteFor(entry.txid()));
                 }
               }
               return absl::OkStatus();
             })},
    });
  }

  CallGate gate_;
  std::unique_ptr<FrameServer> server_;
};

// Records what reaches it and answers each call at once: YES, OK,
// committed, one OK answer per batch entry.
class RecordingTransport final : public ParticipantTransport {
 public:
  void Prepare(const std::string& endpoint, const std::string& txid, uint64_t,
               absl::Duration timeout, std::function<void(absl::StatusOr<Vote>)> done) override {
    Record("Prepare " + txid + " at " + endpoint, timeout);
    done(Vote::kYes);
  }
  void Commit(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
              std::function<void(absl::Status)> done) override {
    Record("Commit " + txid + " at " + endpoint, timeout);
    done(absl::OkStatus());
  }
  void Abort(const std::string& endpoint, const std::string& txid, absl::Duration timeout,
             std::function<void(absl::Status)> done) override {
    Record("Abort " + txid + " at " + endpoint, timeout);
    done(absl::OkStatus());
  }
  void CommitOnePhase(const std::string& endpoint, const std::string& txid, uint64_t,
                      absl::Duration timeout,
                      std::function<void(absl::StatusOr<bool>)> done) override {
    Record("CommitOnePhase " + txid + " at " + endpoint, timeout);
    done(true);
  }
  void Batch(const std::string& endpoint, std::vector<BatchEntry> entries, absl::Duration timeout,
             std::function<void(absl::StatusOr<std::vector<BatchAnswer>>)> done) override {
    Record("Batch " + std::to_string(entries.size()) + " at " + endpoint, timeout);
    done(std::vector<BatchAnswer>(entries.size(), BatchAnswer{absl::OkStatus(), Vote::kYes}));
  }
  int max_batch_entries() const override { return 256; }

  std::vector<std::string> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  absl::Duration last_timeout() {
    absl::MutexLock lock(&mu_);
    return last_timeout_;
  }

 private:
  void Record(std::string call, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
    last_timeout_ = timeout;
  }
  absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  absl::Duration last_timeout_ ABSL_GUARDED_BY(mu_);
};

// Waits for one call's answer.
template <typename T>
class Answer {
 public:
  std::function<void(T)> Callback() {
    return [this](T value) {
      absl::MutexLock lock(&mu_);
      value_.emplace(std::move(value));
    };
  }
  T Get() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::optional<T>* v) { return v->has_value(); }, &value_));
    return *value_;
  }
  bool Has() {
    absl::MutexLock lock(&mu_);
    return value_.has_value();
  }

 private:
  absl::Mutex mu_;
  std::optional<T> value_ ABSL_GUARDED_BY(mu_);
};

TEST(FramedParticipantTransportTest, AnEndpointWithNoFramedPortGoesToTheFallback) {
  RecordingTransport fallback;
  FramedParticipantTransport transport(&fallback);
  Answer<absl::Status> committed;
  transport.Commit(kEndpoint, "t1", kTimeout, committed.Callback());
  EXPECT_TRUE(committed.Get().ok());
  EXPECT_EQ(fallback.calls(), std::vector<std::string>{"Commit t1 at 127.0.0.1:7001"});
  EXPECT_EQ(transport.framed_calls(), 0u);
  EXPECT_EQ(transport.fallbacks(), 0u);
  EXPECT_EQ(transport.max_batch_entries(), 256);
}

TEST(FramedParticipantTransportTest, EveryCallGoesFramedAndReadsAsOverGrpc) {
  FakeFramedParticipant agent;
  RecordingTransport fallback;
  FramedParticipantTransport transport(&fallback);
  transport.NoteFramedEndpoint(kEndpoint, agent.address());
  EXPECT_EQ(transport.FramedEndpointOf(kEndpoint), agent.address());

  Answer<absl::StatusOr<Vote>> yes, read_only, no;
  transport.Prepare(kEndpoint, "t1y", 7, kTimeout, yes.Callback());
  transport.Prepare(kEndpoint, "t2r", 7, kTimeout, read_only.Callback());
  transport.Prepare(kEndpoint, "t3n", 7, kTimeout, no.Callback());
  EXPECT_EQ(yes.Get().value(), Vote::kYes);
  EXPECT_EQ(read_only.Get().value(), Vote::kReadOnly);
  EXPECT_EQ(no.Get().status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(no.Get().status().message(), "voted NO: unknown branch");

  Answer<absl::Status> committed, failed, aborted;
  transport.Commit(kEndpoint, "t1y", kTimeout, committed.Callback());
  transport.Commit(kEndpoint, "t4f", kTimeout, failed.Callback());
  transport.Abort(kEndpoint, "t3n", kTimeout, aborted.Callback());
  EXPECT_TRUE(committed.Get().ok());
  // The agent's own error is the answer: it is not sent again by gRPC.
  EXPECT_EQ(failed.Get().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(failed.Get().message(), "not prepared here");
  EXPECT_TRUE(aborted.Get().ok());

  Answer<absl::StatusOr<bool>> one_phase, one_phase_aborted;
  transport.CommitOnePhase(kEndpoint, "t5", 7, kTimeout, one_phase.Callback());
  transport.CommitOnePhase(kEndpoint, "t6a", 7, kTimeout, one_phase_aborted.Callback());
  EXPECT_TRUE(one_phase.Get().value());
  EXPECT_FALSE(one_phase_aborted.Get().value());

  Answer<absl::StatusOr<std::vector<BatchAnswer>>> batch;
  transport.Batch(kEndpoint,
                  {{BranchOp::kPrepare, "t7y", 1},
                   {BranchOp::kPrepare, "t8n", 1},
                   {BranchOp::kCommit, "t1y", 0}},
                  kTimeout, batch.Callback());
  absl::StatusOr<std::vector<BatchAnswer>> answers = batch.Get();
  ASSERT_TRUE(answers.ok()) << answers.status();
  ASSERT_EQ(answers->size(), 3u);
  EXPECT_EQ((*answers)[0].vote, Vote::kYes);
  EXPECT_EQ((*answers)[1].status.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE((*answers)[2].status.ok());

  // Three prepares, two commits and an abort, two one-phase commits, a batch.
  EXPECT_EQ(agent.calls(), 9u);
  EXPECT_EQ(transport.framed_calls(), 9u);
  EXPECT_EQ(transport.fallbacks(), 0u);
  EXPECT_TRUE(fallback.calls().empty());
}

TEST(FramedParticipantTransportTest, AGoneFramedPortFallsBackWithTheTimeLeftAndIsHeldDown) {
  auto agent = std::make_unique<FakeFramedParticipant>();
  const std::string gone = agent->address();
  agent.reset();  // nothing listens there now
  RecordingTransport fallback;
  FramedParticipantTransport transport(&fallback);
  transport.NoteFramedEndpoint(kEndpoint, gone);
  Answer<absl::Status> committed;
  transport.Commit(kEndpoint, "t1", kTimeout, committed.Callback());
  EXPECT_TRUE(committed.Get().ok());
  EXPECT_EQ(fallback.calls(), std::vector<std::string>{"Commit t1 at 127.0.0.1:7001"});
  EXPECT_GT(fallback.last_timeout(), kTimeout - absl::Seconds(2));
  EXPECT_LE(fallback.last_timeout(), kTimeout);
  EXPECT_EQ(transport.fallbacks(), 1u);
  EXPECT_EQ(transport.FramedEndpointOf(kEndpoint), "");
  // Held down, even when an enlistment names the same port again: the
  // next call goes straight to the fallback.
  transport.NoteFramedEndpoint(kEndpoint, gone);
  Answer<absl::StatusOr<Vote>> vote;
  transport.Prepare(kEndpoint, "t2", 1, kTimeout, vote.Callback());
  EXPECT_EQ(vote.Get().value(), Vote::kYes);
  EXPECT_EQ(fallback.calls().size(), 2u);
  EXPECT_EQ(transport.fallbacks(), 1u);
  // Until the participant enlists with another framed port.
  FakeFramedParticipant back;
  transport.NoteFramedEndpoint(kEndpoint, back.address());
  Answer<absl::Status> again;
  transport.Commit(kEndpoint, "t2", kTimeout, again.Callback());
  EXPECT_TRUE(again.Get().ok());
  EXPECT_EQ(back.calls(), 1u);
  EXPECT_EQ(fallback.calls().size(), 2u);
}

TEST(FramedParticipantTransportTest, TheAgentsOwnUnavailableIsItsAnswer) {
  FakeFramedParticipant agent;
  RecordingTransport fallback;
  FramedParticipantTransport transport(&fallback);
  transport.NoteFramedEndpoint(kEndpoint, agent.address());
  Answer<absl::Status> busy;
  transport.Commit(kEndpoint, "t1u", kTimeout, busy.Callback());
  EXPECT_EQ(busy.Get().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(busy.Get().message(), "database is busy");
  EXPECT_TRUE(fallback.calls().empty());
  EXPECT_EQ(transport.fallbacks(), 0u);
  EXPECT_EQ(transport.FramedEndpointOf(kEndpoint), agent.address());
}

// A port that reads the request and closes without answering: the agent
// may have run it, so it is not sent again; the connection's loss is the
// answer, as it would be over gRPC.
TEST(FramedParticipantTransportTest, ACallThatMayHaveRunIsNotSentAgain) {
  absl::StatusOr<TcpListener> listener = ListenTcp("127.0.0.1:0", "test");
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::thread closer([fd = listener->fd] {
    const int connection = accept(fd, nullptr, nullptr);
    (void)FrameReader(connection).Read(kMaxFrameBodyBytes, absl::Now() + absl::Seconds(10));
    close(connection);
  });
  RecordingTransport fallback;
  FramedParticipantTransport transport(&fallback);
  transport.NoteFramedEndpoint(kEndpoint, listener->address);
  Answer<absl::Status> committed;
  transport.Commit(kEndpoint, "t1", kTimeout, committed.Callback());
  EXPECT_EQ(committed.Get().code(), absl::StatusCode::kUnavailable) << committed.Get();
  closer.join();
  close(listener->fd);
  EXPECT_TRUE(fallback.calls().empty());
  EXPECT_EQ(transport.fallbacks(), 0u);
  EXPECT_EQ(transport.FramedEndpointOf(kEndpoint), listener->address);
}

TEST(FramedParticipantTransportTest, AnEnlistmentWithoutAFramedPortForgetsIt) {
  FakeFramedParticipant agent;
  RecordingTransport fallback;
  FramedParticipantTransport transport(&fallback);
  transport.NoteFramedEndpoint(kEndpoint, agent.address());
  transport.NoteFramedEndpoint(kEndpoint, "");
  Answer<absl::Status> committed;
  transport.Commit(kEndpoint, "t1", kTimeout, committed.Callback());
  EXPECT_TRUE(committed.Get().ok());
  EXPECT_EQ(agent.calls(), 0u);
  EXPECT_EQ(fallback.calls().size(), 1u);
}

TEST(FramedParticipantTransportTest, AParticipantThatDoesNotAnswerHoldsOnlyItsOwnCalls) {
  FakeFramedParticipant stuck, fine;
  RecordingTransport fallback;
  FramedTransportOptions options;
  options.threads_per_endpoint = 2;
  FramedParticipantTransport transport(&fallback, options);
  transport.NoteFramedEndpoint("10.0.0.1:1", stuck.address());
  transport.NoteFramedEndpoint("10.0.0.2:1", fine.address());
  stuck.gate().Hold();
  Answer<absl::Status> a, b, c;
  transport.Commit("10.0.0.1:1", "a", kTimeout, a.Callback());
  transport.Commit("10.0.0.1:1", "b", kTimeout, b.Callback());
  transport.Commit("10.0.0.1:1", "c", kTimeout, c.Callback());  // queued: both threads wait
  stuck.gate().WaitForCalls(2);
  EXPECT_EQ(transport.threads(), 2);
  Answer<absl::Status> other;
  transport.Commit("10.0.0.2:1", "d", kTimeout, other.Callback());
  EXPECT_TRUE(other.Get().ok());
  EXPECT_FALSE(a.Has() || b.Has() || c.Has());
  stuck.gate().Release();
  EXPECT_TRUE(a.Get().ok());
  EXPECT_TRUE(b.Get().ok());
  EXPECT_TRUE(c.Get().ok());
  EXPECT_EQ(stuck.calls(), 3u);
  EXPECT_TRUE(fallback.calls().empty());
}

TEST(FramedParticipantTransportTest, ACallQueuedPastItsDeadlineIsNotSent) {
  FakeFramedParticipant agent;
  RecordingTransport fallback;
  FramedTransportOptions options;
  options.threads_per_endpoint = 1;
  FramedParticipantTransport transport(&fallback, options);
  transport.NoteFramedEndpoint(kEndpoint, agent.address());
  agent.gate().Hold();
  Answer<absl::Status> first, late;
  transport.Commit(kEndpoint, "first", kTimeout, first.Callback());
  agent.gate().WaitForCalls(1);
  // Its deadline passes while it waits behind the held call.
  transport.Commit(kEndpoint, "late", absl::Nanoseconds(1), late.Callback());
  EXPECT_FALSE(late.Has());
  agent.gate().Release();
  EXPECT_TRUE(first.Get().ok());
  EXPECT_EQ(late.Get().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(agent.gate().calls(), std::vector<std::string>{"Commit first"});
  EXPECT_TRUE(fallback.calls().empty());
}

TEST(FramedParticipantTransportTest, IdleThreadsEnd) {
  FakeFramedParticipant agent;
  RecordingTransport fallback;
  FramedTransportOptions options;
  options.idle_exit = absl::Milliseconds(20);
  FramedParticipantTransport transport(&fallback, options);
  transport.NoteFramedEndpoint(kEndpoint, agent.address());
  Answer<absl::Status> committed;
  transport.Commit(kEndpoint, "t1", kTimeout, committed.Callback());
  EXPECT_TRUE(committed.Get().ok());
  EXPECT_TRUE(Eventually([&] { return transport.threads() == 0; }, absl::Seconds(10)));
  // Its connection closes with it; the next call starts a thread again.
  EXPECT_TRUE(Eventually([&] { return agent.open_connections() == 0; }, absl::Seconds(10)));
  Answer<absl::Status> again;
  transport.Commit(kEndpoint, "t2", kTimeout, again.Callback());
  EXPECT_TRUE(again.Get().ok());
  EXPECT_EQ(agent.calls(), 2u);
}

}  // namespace
}  // namespace txcoord::coordinator
