// Bad requests get a gRPC status that names the problem, and no daemon dies
// of them (docs/protocol.md, "Errors"). Raw generated stubs, so that nothing on
// the client side validates or rewrites the request or the status.
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/txid.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/grpc_util.h"
#include "tests/integration/cluster_fixture.h"
#include "txcoord/v1/txcoord.grpc.pb.h"

namespace txcoord::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kMalformedTxid[] = "not a txid!";

// Far above the daemons' 16 MiB message limit, and sent on a channel that
// allows it, so the server is the one to refuse.
constexpr size_t kOversized = 20 << 20;

class BadRequestsTest : public ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    coordinator_stub_ =
        v1::Coordinator::NewStub(LargeMessageChannel(cluster_->coordinator_address()));
    agent_stub_ = v1::Agent::NewStub(LargeMessageChannel(cluster_->agent_address(0)));
    for (AgentClient* agent : agents_) {
      absl::StatusOr<ExecuteResult> created =
          agent->Execute("", {{"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", {}}});
      ASSERT_TRUE(created.ok()) << created.status();
    }
  }

  void TearDown() override {
    coordinator_stub_.reset();
    agent_stub_.reset();
    ClusterFixture::TearDown();
  }

  // A well-formed txid of this coordinator that it never issued.
  std::string UnknownTxid() {
    absl::StatusOr<std::string> real = coordinator_->Begin();
    EXPECT_TRUE(real.ok()) << real.status();
    absl::StatusOr<Txid> parsed = ParseTxid(real.value_or(""));
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    Txid unknown = parsed.value_or(Txid{"it", 1, 0});
    unknown.sequence += 1000000;
    return unknown.ToString();
  }

  // One call of a stub `method` whose request carries only `txid`.
  template <typename Request, typename Response, typename Stub, typename Method>
  static grpc::Status CallWithTxid(Stub* stub, Method method, const std::string& txid,
                                   absl::Duration timeout) {
    Request request;
    request.set_txid(txid);
    Response response;
    grpc::ClientContext context;
    SetDeadline(&context, timeout);
    return (stub->*method)(&context, request, &response);
  }
  grpc::Status Commit(const std::string& txid) {
    return CallWithTxid<v1::CommitRequest, v1::CommitResponse>(
        coordinator_stub_.get(), &v1::Coordinator::Stub::Commit, txid, absl::Seconds(30));
  }
  grpc::Status Abort(const std::string& txid) {
    return CallWithTxid<v1::AbortRequest, v1::AbortResponse>(
        coordinator_stub_.get(), &v1::Coordinator::Stub::Abort, txid, absl::Seconds(10));
  }
  grpc::Status GetTransaction(const std::string& txid) {
    return CallWithTxid<v1::GetTransactionRequest, v1::Transaction>(
        coordinator_stub_.get(), &v1::Coordinator::Stub::GetTransaction, txid, absl::Seconds(10));
  }
  grpc::Status Release(const std::string& txid) {
    return CallWithTxid<v1::ReleaseRequest, v1::ReleaseResponse>(
        agent_stub_.get(), &v1::Agent::Stub::Release, txid, absl::Seconds(10));
  }
  grpc::Status Enlist(const std::string& txid) {
    v1::EnlistRequest request;
    request.set_txid(txid);
    request.set_participant("intruder");
    request.set_endpoint("127.0.0.1:1");
    v1::EnlistResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(10));
    return coordinator_stub_->Enlist(&context, request, &response);
  }
  grpc::Status Execute(const v1::ExecuteRequest& request) {
    v1::ExecuteResponse response;
    grpc::ClientContext context;
    SetDeadline(&context, absl::Seconds(30));
    return agent_stub_->Execute(&context, request, &response);
  }
  static v1::ExecuteRequest Request(const std::string& txid, const std::string& sql) {
    v1::ExecuteRequest request;
    request.set_txid(txid);
    request.add_statements()->set_sql(sql);
    return request;
  }

  std::unique_ptr<v1::Coordinator::Stub> coordinator_stub_;
  std::unique_ptr<v1::Agent::Stub> agent_stub_;
};

// Matches a status by code and checks that it carries a message.
MATCHER_P(HasCode, code, "") {
  *result_listener << "status " << arg.error_code() << " \"" << arg.error_message() << "\"";
  return arg.error_code() == code && !arg.error_message().empty();
}

TEST_F(BadRequestsTest, UnknownTxidIsNotFound) {
  const std::string txid = UnknownTxid();
  EXPECT_THAT(Commit(txid), HasCode(grpc::StatusCode::NOT_FOUND));
  EXPECT_THAT(Enlist(txid), HasCode(grpc::StatusCode::NOT_FOUND));
  EXPECT_THAT(GetTransaction(txid), HasCode(grpc::StatusCode::NOT_FOUND));
}

TEST_F(BadRequestsTest, MalformedTxidIsInvalidArgumentNamingTheTxid) {
  for (const std::string& txid :
       {std::string(kMalformedTxid), std::string(), std::string(200, 'a')}) {
    SCOPED_TRACE(absl::StrCat("txid \"", txid.substr(0, 20), "\""));
    grpc::Status commit = Commit(txid);
    EXPECT_THAT(commit, HasCode(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_THAT(commit.error_message(), HasSubstr("txid"));
    EXPECT_THAT(Abort(txid), HasCode(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_THAT(GetTransaction(txid), HasCode(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_THAT(Enlist(txid), HasCode(grpc::StatusCode::INVALID_ARGUMENT));
    grpc::Status release = Release(txid);
    EXPECT_THAT(release, HasCode(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_THAT(release.error_message(), HasSubstr("txid"));
  }
  EXPECT_THAT(Execute(Request(kMalformedTxid, "UPDATE t SET v = 'x'")),
              HasCode(grpc::StatusCode::INVALID_ARGUMENT));
}

TEST_F(BadRequestsTest, ExecuteWithoutStatementsIsInvalidArgument) {
  v1::ExecuteRequest autocommit;
  EXPECT_THAT(Execute(autocommit), HasCode(grpc::StatusCode::INVALID_ARGUMENT));
  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  v1::ExecuteRequest in_branch;
  in_branch.set_txid(*txid);
  EXPECT_THAT(Execute(in_branch), HasCode(grpc::StatusCode::INVALID_ARGUMENT));
}

TEST_F(BadRequestsTest, MalformedSqlIsInvalidArgumentNamingTheError) {
  grpc::Status autocommit = Execute(Request("", "SELEC 1"));
  EXPECT_THAT(autocommit, HasCode(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(autocommit.error_message(), HasSubstr("syntax error"));

  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  grpc::Status in_branch = Execute(Request(*txid, "UPDATE t SET v = 'x' WHERE id = = 1"));
  EXPECT_THAT(in_branch, HasCode(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(in_branch.error_message(), HasSubstr("syntax error"));
  grpc::Status no_table = Execute(Request(*txid, "UPDATE no_such_table SET v = 1"));
  EXPECT_THAT(no_table, HasCode(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_THAT(no_table.error_message(), HasSubstr("no_such_table"));
}

TEST_F(BadRequestsTest, OutOfRangeFieldsAreRefused) {
  v1::BeginRequest begin;
  begin.set_timeout_ms(3600001);  // one hour is the maximum
  v1::BeginResponse begun;
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  EXPECT_THAT(coordinator_stub_->Begin(&context, begin, &begun),
              HasCode(grpc::StatusCode::INVALID_ARGUMENT));

  v1::ExecuteRequest lock_timeout = Request("", "SELECT 1");
  lock_timeout.set_lock_timeout_ms(60001);
  EXPECT_THAT(Execute(lock_timeout), HasCode(grpc::StatusCode::INVALID_ARGUMENT));
  v1::ExecuteRequest prepare_without_txid = Request("", "SELECT 1");
  prepare_without_txid.set_prepare(true);
  EXPECT_THAT(Execute(prepare_without_txid), HasCode(grpc::StatusCode::INVALID_ARGUMENT));
  v1::ExecuteRequest too_many = Request("", "SELECT 1");
  for (int i = 0; i < 256; ++i) too_many.add_statements()->set_sql("SELECT 1");
  EXPECT_THAT(Execute(too_many), AnyOf(HasCode(grpc::StatusCode::INVALID_ARGUMENT),
                                       HasCode(grpc::StatusCode::RESOURCE_EXHAUSTED)));
  // One byte over the documented 65,536-byte statement limit.
  std::string long_sql = "SELECT 1 -- ";
  long_sql.resize(65537, 'x');
  EXPECT_THAT(Execute(Request("", long_sql)), AnyOf(HasCode(grpc::StatusCode::INVALID_ARGUMENT),
                                                    HasCode(grpc::StatusCode::RESOURCE_EXHAUSTED)));
}

TEST_F(BadRequestsTest, EnlistOnACommittedTransactionIsFailedPrecondition) {
  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  absl::StatusOr<SqlResult> wrote =
      agents_[0]->ExecuteOne(*txid, "INSERT INTO t (id, v) VALUES (1, 'a')");
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
  ASSERT_TRUE(commit.ok()) << commit.status();
  ASSERT_TRUE(commit->committed) << commit->reason;

  EXPECT_THAT(Enlist(*txid), HasCode(grpc::StatusCode::FAILED_PRECONDITION));
  // The same through an agent: its enlist is refused, so the write must not
  // join the decided transaction (participant.h: ABORTED).
  absl::StatusOr<SqlResult> late =
      agents_[1]->ExecuteOne(*txid, "INSERT INTO t (id, v) VALUES (1, 'late')");
  EXPECT_TRUE(absl::IsAborted(late.status()) || absl::IsFailedPrecondition(late.status()))
      << late.status();
}

TEST_F(BadRequestsTest, OversizedRequestsAreRefused) {
  const std::string huge(kOversized, 'x');
  EXPECT_THAT(Execute(Request("", absl::StrCat("SELECT '", huge, "'"))),
              AnyOf(HasCode(grpc::StatusCode::RESOURCE_EXHAUSTED),
                    HasCode(grpc::StatusCode::INVALID_ARGUMENT)));
  EXPECT_THAT(Commit(huge), AnyOf(HasCode(grpc::StatusCode::RESOURCE_EXHAUSTED),
                                  HasCode(grpc::StatusCode::INVALID_ARGUMENT)));
}

// Each test has a cluster of its own, so this one throws every kind of bad
// request at one cluster and then checks that it still serves.
TEST_F(BadRequestsTest, DaemonsStillServeAfterBadRequests) {
  const std::string unknown = UnknownTxid();
  (void)Commit(unknown);
  (void)Enlist(kMalformedTxid);
  (void)Execute(v1::ExecuteRequest());
  (void)Execute(Request("", "SELEC 1"));
  (void)Execute(Request("", std::string(kOversized, 'x')));
  (void)Commit(std::string(kOversized, 'x'));
  ASSERT_TRUE(cluster_->CheckRunning().ok()) << cluster_->CheckRunning();

  absl::StatusOr<std::string> txid = coordinator_->Begin();
  ASSERT_TRUE(txid.ok()) << txid.status();
  for (AgentClient* agent : agents_) {
    absl::StatusOr<SqlResult> one = agent->ExecuteOne("", "SELECT 1");
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(one->rows.size(), 1u);
  }
  absl::StatusOr<SqlResult> wrote =
      agents_[0]->ExecuteOne(*txid, "INSERT INTO t (id, v) VALUES (2, 'b')");
  ASSERT_TRUE(wrote.ok()) << wrote.status();
  absl::StatusOr<CommitResult> commit = coordinator_->Commit(*txid);
  ASSERT_TRUE(commit.ok()) << commit.status();
  EXPECT_TRUE(commit->committed) << commit->reason;
}

}  // namespace
}  // namespace txcoord::testing
