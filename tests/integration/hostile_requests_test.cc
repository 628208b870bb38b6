// A table of hostile requests against the running daemons: each must get a
// clear gRPC status (the expected code and a message), and both daemons must
// keep serving afterwards.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/grpc_util.h"
#include "tests/integration/cluster_fixture.h"
#include "txcoord/v1/admin.grpc.pb.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::testing {
namespace {

using Code = grpc::StatusCode;

class HostileRequestsTest : public ClusterFixture {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = ClusterFixture::Options();
    // Short, so that the runaway-query cases end quickly; far above what
    // every other case's SQL needs.
    options.agent_flags.push_back("--max_statement_time=500ms");
    return options;
  }

  void SetUp() override {
    ClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    coordinator_ = v1::Coordinator::NewStub(LargeMessageChannel(cluster_->coordinator_address()));
    agent_ = v1::Agent::NewStub(LargeMessageChannel(cluster_->agent_address(0)));
    participant_ = v1::Participant::NewStub(LargeMessageChannel(cluster_->agent_address(0)));
    coordinator_admin_ =
        v1::CoordinatorAdmin::NewStub(LargeMessageChannel(cluster_->coordinator_address()));
    agent_admin_ = v1::AgentAdmin::NewStub(LargeMessageChannel(cluster_->agent_address(0)));
    ASSERT_TRUE(
        agents_[0]->Execute("", {{"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", {}}}).ok());
  }

  void TearDown() override {
    coordinator_.reset();
    agent_.reset();
    participant_.reset();
    coordinator_admin_.reset();
    agent_admin_.reset();
    ClusterFixture::TearDown();
  }

  grpc::Status Execute(const v1::ExecuteRequest& request) {
    v1::ExecuteResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(30));
    return agent_->Execute(&context, request, &response);
  }

  static v1::ExecuteRequest Sql(const std::string& txid, const std::string& sql, int copies = 1) {
    v1::ExecuteRequest request;
    request.set_txid(txid);
    for (int i = 0; i < copies; ++i) request.add_statements()->set_sql(sql);
    return request;
  }

  std::string Begin() {
    absl::StatusOr<std::string> txid = ClusterFixture::coordinator_->Begin();
    EXPECT_TRUE(txid.ok()) << txid.status();
    return txid.value_or("");
  }

  // Both daemons answer a normal request.
  void ExpectStillServing(const std::string& after) {
    ASSERT_TRUE(cluster_->CheckRunning().ok())
        << "after " << after << ": " << cluster_->CheckRunning();
    EXPECT_TRUE(ClusterFixture::coordinator_->Begin().ok()) << "after " << after;
    EXPECT_TRUE(agents_[0]->ExecuteOne("", "SELECT COUNT(*) FROM t").ok()) << "after " << after;
  }

  std::unique_ptr<v1::Coordinator::Stub> coordinator_;
  std::unique_ptr<v1::Agent::Stub> agent_;
  std::unique_ptr<v1::Participant::Stub> participant_;
  std::unique_ptr<v1::CoordinatorAdmin::Stub> coordinator_admin_;
  std::unique_ptr<v1::AgentAdmin::Stub> agent_admin_;
};

struct Case {
  std::string name;
  std::set<Code> expected;
  std::function<grpc::Status()> call;
  // If set, the status message must contain it.
  std::string message_has;
};

TEST_F(HostileRequestsTest, EveryHostileRequestGetsAClearStatusAndTheDaemonsKeepServing) {
  const std::string invalid_utf8 = "SELECT '\xff\xfe\xc3\x28'";
  // Never ends by itself: only the agent's --max_statement_time stops it.
  const std::string runaway =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
  std::vector<Case> cases = {
      {"257 statements",
       {Code::RESOURCE_EXHAUSTED},
       [&] { return Execute(Sql("", "SELECT 1", 257)); }},
      {"100,000 statements",
       {Code::RESOURCE_EXHAUSTED},
       [&] { return Execute(Sql("", "SELECT 1", 100000)); }},
      {"1 MiB of SQL",
       {Code::RESOURCE_EXHAUSTED},
       [&] { return Execute(Sql("", "SELECT 1 -- " + std::string(1 << 20, 'x'))); }},
      {"a 20 MiB message",
       {Code::RESOURCE_EXHAUSTED},
       [&] { return Execute(Sql("", "SELECT 1 -- " + std::string(20 << 20, 'x'))); }},
      {"read of an internal table",
       {Code::PERMISSION_DENIED},
       [&] { return Execute(Sql("", "SELECT * FROM _txcoord_prepared")); }},
      {"delete from an internal table inside a branch",
       {Code::PERMISSION_DENIED},
       [&] { return Execute(Sql(Begin(), "DELETE FROM _txcoord_prepared")); }},
      {"ATTACH",
       {Code::PERMISSION_DENIED},
       [&] { return Execute(Sql("", "ATTACH DATABASE '/tmp/x.db' AS x")); }},
      {"load_extension",
       {Code::PERMISSION_DENIED, Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("", "SELECT load_extension('/tmp/evil.so')")); }},
      {"PRAGMA writable_schema",
       {Code::PERMISSION_DENIED},
       [&] { return Execute(Sql("", "PRAGMA writable_schema = 1")); }},
      {"PRAGMA journal_mode",
       {Code::PERMISSION_DENIED},
       [&] { return Execute(Sql("", "PRAGMA journal_mode = DELETE")); }},
      {"two statements in one item",
       {Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("", "SELECT 1; DELETE FROM t")); }},
      {"malformed SQL",
       {Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("", "SELEC nonsense")); }},
      {"a runaway recursive query",
       {Code::RESOURCE_EXHAUSTED},
       [&] { return Execute(Sql("", runaway)); }},
      {"a runaway recursive query inside a branch",
       {Code::RESOURCE_EXHAUSTED},
       [&] { return Execute(Sql(Begin(), runaway)); }},
      // Text fields are proto `bytes`: ill-formed UTF-8 reaches the service,
      // which names the field, rather than gRPC's bare INTERNAL.
      {"invalid UTF-8 in SQL",
       {Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("", invalid_utf8)); },
       "statements[0].sql is not valid UTF-8 (byte 8)"},
      {"an overlong encoding in SQL",
       {Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("", "SELECT '\xc0\xaf'")); },
       "statements[0].sql is not valid UTF-8 (byte 8)"},
      {"a surrogate in a TEXT parameter",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::ExecuteRequest request = Sql("", "SELECT ?1");
         request.mutable_statements(0)->add_params()->set_text_value("\xed\xa0\x80");
         return Execute(request);
       },
       "statements[0].params[0].text_value is not valid UTF-8 (byte 0)"},
      {"a code point above U+10FFFF in a TEXT parameter inside a branch",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::ExecuteRequest request = Sql(Begin(), "INSERT INTO t (id, v) VALUES (6, 'fine')");
         v1::Statement* update = request.add_statements();
         update->set_sql("UPDATE t SET v = ?2 WHERE id = ?1");
         update->add_params()->set_int_value(6);
         update->add_params()->set_text_value("ok \xf4\x90\x80\x80");
         return Execute(request);
       },
       "statements[1].params[1].text_value is not valid UTF-8 (byte 3)"},
      {"a NUL byte inside SQL",
       {Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("", std::string("SELECT 1\0; DELETE FROM t", 24))); },
       "statements[0].sql contains a NUL byte (byte 8)"},
      {"invalid UTF-8 in a txid",
       {Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("c\xff.1.1", "INSERT INTO t (id) VALUES (1)")); },
       "malformed txid"},
      {"malformed txid",
       {Code::INVALID_ARGUMENT},
       [&] { return Execute(Sql("1.2.3.4.5", "INSERT INTO t (id) VALUES (1)")); }},
      {"write under a txid of another coordinator",
       {Code::FAILED_PRECONDITION, Code::ABORTED},
       [&] { return Execute(Sql("elsewhere.1.1", "INSERT INTO t (id) VALUES (2)")); }},
      {"write under a txid this coordinator never issued",
       {Code::NOT_FOUND, Code::ABORTED, Code::FAILED_PRECONDITION},
       [&] {
         std::string txid = Begin();
         return Execute(Sql(txid + "999", "INSERT INTO t (id) VALUES (3)"));
       }},
      {"prepare without a txid",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::ExecuteRequest request = Sql("", "SELECT 1");
         request.set_prepare(true);
         return Execute(request);
       }},
      {"Commit of a txid of another coordinator",
       {Code::FAILED_PRECONDITION},
       [&] {
         v1::CommitRequest request;
         request.set_txid("elsewhere.1.1");
         v1::CommitResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->Commit(&context, request, &response);
       }},
      {"QueryOutcome of a txid of another coordinator",
       {Code::FAILED_PRECONDITION},
       [&] {
         v1::QueryOutcomeRequest request;
         request.set_txid("elsewhere.1.1");
         request.set_participant("agent0");
         v1::QueryOutcomeResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->QueryOutcome(&context, request, &response);
       }},
      {"Commit with invalid UTF-8 in the txid",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::CommitRequest request;
         request.set_txid(Begin() + "\xff");
         v1::CommitResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->Commit(&context, request, &response);
       },
       "malformed txid"},
      {"Enlist with invalid UTF-8 in the participant name",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::EnlistRequest request;
         request.set_txid(Begin());
         request.set_participant("agent\xc3");
         request.set_endpoint("127.0.0.1:1");
         v1::EnlistResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->Enlist(&context, request, &response);
       },
       "participant"},
      {"QueryOutcome with invalid UTF-8 in the participant name",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::QueryOutcomeRequest request;
         request.set_txid(Begin());
         request.set_participant("\xfe\xff");
         v1::QueryOutcomeResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->QueryOutcome(&context, request, &response);
       },
       "participant"},
      {"ForceAbort with invalid UTF-8 in the reason",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::ForceAbortRequest request;
         request.set_txid(Begin());
         request.set_reason("stuck \xe0\x80\x80");
         v1::AdminActionResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_admin_->ForceAbort(&context, request, &response);
       },
       "reason is not valid UTF-8 (byte 6)"},
      {"MarkBranchDone with invalid UTF-8 in the note",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::MarkBranchDoneRequest request;
         request.set_txid(Begin());
         request.set_participant("agent0");
         request.set_note("\x80");
         v1::AdminActionResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_admin_->MarkBranchDone(&context, request, &response);
       },
       "note is not valid UTF-8 (byte 0)"},
      {"ListTransactions with invalid UTF-8 in the page token",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::ListTransactionsRequest request;
         request.set_page_token("c.1.\xff");
         v1::ListTransactionsResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_admin_->ListTransactions(&context, request, &response);
       },
       "page_token is not valid UTF-8 (byte 4)"},
      {"ResolveBranch with invalid UTF-8 in the reason",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::ResolveBranchRequest request;
         request.set_txid("elsewhere.1.1");
         request.set_decision(v1::OUTCOME_ABORTED);
         request.set_reason("\xed\xbf\xbf");
         v1::HeuristicDecision response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return agent_admin_->ResolveBranch(&context, request, &response);
       },
       "reason is not valid UTF-8 (byte 0)"},
      {"Enlist with a 10,000-byte participant name",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::EnlistRequest request;
         request.set_txid(Begin());
         request.set_participant(std::string(10000, 'p'));
         request.set_endpoint("127.0.0.1:1");
         v1::EnlistResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->Enlist(&context, request, &response);
       }},
      {"Begin with a ten-hour timeout",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::BeginRequest request;
         request.set_timeout_ms(10u * 3600 * 1000);
         v1::BeginResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->Begin(&context, request, &response);
       }},
      {"phase-2 Commit of a branch that never prepared",
       {Code::FAILED_PRECONDITION},
       [&] {
         std::string txid = Begin();
         EXPECT_TRUE(agents_[0]->ExecuteOne(txid, "INSERT INTO t (id) VALUES (4)").ok());
         v1::BranchRequest request;
         request.set_txid(txid);
         v1::BranchResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return participant_->Commit(&context, request, &response);
       }},
      {"Prepare with a malformed txid",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::PrepareRequest request;
         request.set_txid(std::string(300, '.'));
         v1::PrepareResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return participant_->Prepare(&context, request, &response);
       }},
      {"EnlistBatch with no enlistments",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::EnlistBatchRequest request;
         v1::EnlistBatchResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->EnlistBatch(&context, request, &response);
       },
       "no enlistments"},
      {"EnlistBatch of 1001 enlistments",
       {Code::RESOURCE_EXHAUSTED},
       [&] {
         v1::EnlistBatchRequest request;
         for (int i = 0; i < 1001; ++i) request.add_enlistments()->set_txid("c1.1.1");
         v1::EnlistBatchResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->EnlistBatch(&context, request, &response);
       },
       "at most 1000"},
      {"Batch with no entries",
       {Code::INVALID_ARGUMENT},
       [&] {
         v1::BatchRequest request;
         v1::BatchResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return participant_->Batch(&context, request, &response);
       },
       "no entries"},
      {"Batch of 1001 entries",
       {Code::RESOURCE_EXHAUSTED},
       [&] {
         v1::BatchRequest request;
         for (int i = 0; i < 1001; ++i) {
           v1::BatchRequest::Entry* entry = request.add_entries();
           entry->set_kind(v1::BatchRequest::KIND_ABORT);
           entry->set_txid(absl::StrCat("c1.1.", i));
         }
         v1::BatchResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return participant_->Batch(&context, request, &response);
       },
       "at most 1000"},
      {"Abort of a committed transaction",
       {Code::FAILED_PRECONDITION},
       [&] {
         std::string txid = Begin();
         EXPECT_TRUE(agents_[0]->ExecuteOne(txid, "INSERT INTO t (id) VALUES (5)").ok());
         absl::StatusOr<CommitResult> commit = ClusterFixture::coordinator_->Commit(txid);
         EXPECT_TRUE(commit.ok() && commit->committed);
         v1::AbortRequest request;
         request.set_txid(txid);
         v1::AbortResponse response;
         grpc::ClientContext context;
         SetDeadline(&context, absl::Seconds(10));
         return coordinator_->Abort(&context, request, &response);
       }},
  };

  for (const Case& c : cases) {
    grpc::Status status = c.call();
    EXPECT_TRUE(c.expected.count(status.error_code()))
        << c.name << ": got code " << status.error_code() << " \"" << status.error_message()
        << "\"";
    EXPECT_FALSE(status.error_message().empty()) << c.name << ": a status without a message";
    if (!c.message_has.empty()) {
      EXPECT_THAT(status.error_message(), ::testing::HasSubstr(c.message_has)) << c.name;
    }
    ExpectStillServing(c.name);
  }
}

TEST_F(HostileRequestsTest, EnlistBatchAnswersEachEnlistmentAsEnlistWould) {
  const std::string txid = Begin();
  v1::EnlistBatchRequest request;
  auto add = [&request](const std::string& txid, const std::string& participant,
                        const std::string& endpoint) {
    v1::EnlistRequest* enlistment = request.add_enlistments();
    enlistment->set_txid(txid);
    enlistment->set_participant(participant);
    enlistment->set_endpoint(endpoint);
    enlistment->set_branch_token(1);
  };
  add(txid, "svc-a", "127.0.0.1:1");
  add(std::string(300, '.'), "svc-b", "127.0.0.1:1");
  add(txid, "svc-c", "not an endpoint");
  add(txid, "svc-a", "127.0.0.1:1");  // again, same token: a no-op
  v1::EnlistBatchResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  grpc::Status status = coordinator_->EnlistBatch(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.answers_size(), 4);
  EXPECT_EQ(response.answers(0).code(), 0) << response.answers(0).message();
  EXPECT_EQ(response.answers(1).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(response.answers(2).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(response.answers(2).message().empty());
  EXPECT_EQ(response.answers(3).code(), 0) << response.answers(3).message();
  // The transaction holds the one valid branch: aborting it is still allowed.
  v1::AbortRequest abort;
  abort.set_txid(txid);
  v1::AbortResponse aborted;
  grpc::ClientContext abort_context;
  SetDeadline(&abort_context, absl::Seconds(10));
  EXPECT_TRUE(coordinator_->Abort(&abort_context, abort, &aborted).ok());
  ExpectStillServing("enlist batch");
}

TEST_F(HostileRequestsTest, BadBatchEntriesAreAnsweredOneByOneAndTheRestRun) {
  v1::BatchRequest request;
  auto add = [&request](v1::BatchRequest::Kind kind, const std::string& txid) {
    v1::BatchRequest::Entry* entry = request.add_entries();
    entry->set_kind(kind);
    entry->set_txid(txid);
  };
  add(v1::BatchRequest::KIND_PREPARE, std::string(300, '.'));
  add(v1::BatchRequest::KIND_UNSPECIFIED, "c1.1.1");
  add(v1::BatchRequest::KIND_PREPARE, "c1.1.2");  // unknown: votes NO
  add(v1::BatchRequest::KIND_ABORT, "\xff\xfe");
  add(v1::BatchRequest::KIND_COMMIT, "c1.1.3");  // unknown: done before
  v1::BatchResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  grpc::Status status = participant_->Batch(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.answers_size(), 5);
  EXPECT_EQ(response.answers(0).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(response.answers(0).message().empty());
  EXPECT_EQ(response.answers(1).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(response.answers(1).message(), ::testing::HasSubstr("entries[1].kind"));
  EXPECT_EQ(response.answers(2).code(), 0);
  EXPECT_EQ(response.answers(2).vote(), v1::VOTE_NO);
  EXPECT_EQ(response.answers(3).code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(response.answers(4).code(), 0);
  ExpectStillServing("bad batch entries");
}

// Value.text_value is `bytes`: TEXT that SQL made ill-formed still reaches
// the client (as a `string` it would fail the client's parse).
TEST_F(HostileRequestsTest, IllFormedTextInAResultReachesTheClient) {
  v1::ExecuteResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(30));
  grpc::Status status =
      agent_->Execute(&context, Sql("", "SELECT CAST(x'ff61' AS TEXT)"), &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  ASSERT_EQ(response.results_size(), 1);
  ASSERT_EQ(response.results(0).rows_size(), 1);
  EXPECT_EQ(response.results(0).rows(0).values(0).text_value(),
            "\xff"
            "a");
}

}  // namespace
}  // namespace txcoord::testing
