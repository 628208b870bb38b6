#include "coordinator/admin_service.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/txid.h"
#include "common/utf8.h"
#include "coordinator/coordinator_service.h"
#include "rpc/access_policy.h"
#include "rpc/grpc_util.h"

namespace txcoord::coordinator {
namespace {

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

grpc::Status CheckTxid(const std::string& txid) { return ToGrpcStatus(ParseTxid(txid).status()); }

grpc::Status CheckNote(const std::string& field, const std::string& text) {
  if (text.size() > kMaxNoteBytes) {
    return Invalid(absl::StrCat(field, " is ", text.size(), " bytes: at most ", kMaxNoteBytes));
  }
  return ToGrpcStatus(CheckUtf8(field, text));
}

bool FromProto(v1::TxState state, TxState* out) {
  switch (state) {
    case v1::TX_STATE_ACTIVE:
      *out = TxState::kActive;
      return true;
    case v1::TX_STATE_PREPARING:
      *out = TxState::kPreparing;
      return true;
    case v1::TX_STATE_COMMITTING:
      *out = TxState::kCommitting;
      return true;
    case v1::TX_STATE_COMMITTED:
      *out = TxState::kCommitted;
      return true;
    case v1::TX_STATE_ABORTED:
      *out = TxState::kAborted;
      return true;
    default:
      return false;
  }
}

grpc::Status Answer(const absl::StatusOr<AdminResult>& result, v1::AdminActionResponse* response) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  ToProto(result->transaction, response->mutable_transaction());
  response->set_message(result->message);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AdminService::ListTransactions(grpc::ServerContext* context,
                                            const v1::ListTransactionsRequest* request,
                                            v1::ListTransactionsResponse* response) {
  if (grpc::Status admitted =
          AdmitCall(policy_, *context, "/txcoord.v1.CoordinatorAdmin/ListTransactions");
      !admitted.ok()) {
    return admitted;
  }
  ListFilter filter;
  for (int i = 0; i < request->states_size(); ++i) {
    TxState state;
    if (!FromProto(request->states(i), &state)) {
      return Invalid(absl::StrCat("states[", i, "] is not a transaction state (",
                                  static_cast<int>(request->states(i)), ")"));
    }
    filter.states.push_back(state);
  }
  // Ten years is "everything"; it also keeps the conversion from overflowing.
  const uint64_t max_age_ms = 10ull * 365 * 24 * 3600 * 1000;
  filter.min_age = absl::Milliseconds(std::min<uint64_t>(request->min_age_ms(), max_age_ms));
  if (!request->participant().empty() && !IsValidName(request->participant())) {
    return Invalid("participant must be 1 to 128 characters of [A-Za-z0-9_.:-]");
  }
  filter.participant = request->participant();
  if (request->page_size() > kMaxPageSize) {
    return Invalid(
        absl::StrCat("page_size ", request->page_size(), " is over the limit of ", kMaxPageSize));
  }
  filter.page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  // A token is a txid we handed out; the engine refuses anything else and
  // quotes it in the message, so keep what it quotes short and UTF-8.
  if (request->page_token().size() > kMaxTxidBytes) {
    return Invalid(absl::StrCat("page_token is ", request->page_token().size(),
                                " bytes: not one this coordinator handed out"));
  }
  if (grpc::Status s = ToGrpcStatus(CheckUtf8("page_token", request->page_token())); !s.ok()) {
    return s;
  }
  filter.page_token = request->page_token();
  filter.include_finished = request->include_finished();
  absl::StatusOr<ListPage> page = runtime_->List(filter);
  if (!page.ok()) return ToGrpcStatus(page.status());
  for (const TransactionView& view : page->transactions) {
    ToProto(view, response->add_transactions());
  }
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetTransaction(grpc::ServerContext* context,
                                          const v1::GetTransactionRequest* request,
                                          v1::Transaction* response) {
  if (grpc::Status admitted =
          AdmitCall(policy_, *context, "/txcoord.v1.CoordinatorAdmin/GetTransaction");
      !admitted.ok()) {
    return admitted;
  }
  if (grpc::Status s = CheckTxid(request->txid()); !s.ok()) return s;
  absl::StatusOr<TransactionView> view = runtime_->Describe(request->txid());
  if (!view.ok()) return ToGrpcStatus(view.status());
  ToProto(*view, response);
  return grpc::Status::OK;
}

grpc::Status AdminService::RetryPhase2(grpc::ServerContext* context,
                                       const v1::RetryPhase2Request* request,
                                       v1::AdminActionResponse* response) {
  if (grpc::Status admitted =
          AdmitCall(policy_, *context, "/txcoord.v1.CoordinatorAdmin/RetryPhase2");
      !admitted.ok()) {
    return admitted;
  }
  if (grpc::Status s = CheckTxid(request->txid()); !s.ok()) return s;
  return Answer(runtime_->RetryPhase2(request->txid()), response);
}

grpc::Status AdminService::ForceAbort(grpc::ServerContext* context,
                                      const v1::ForceAbortRequest* request,
                                      v1::AdminActionResponse* response) {
  if (grpc::Status admitted =
          AdmitCall(policy_, *context, "/txcoord.v1.CoordinatorAdmin/ForceAbort");
      !admitted.ok()) {
    return admitted;
  }
  if (grpc::Status s = CheckTxid(request->txid()); !s.ok()) return s;
  if (grpc::Status s = CheckNote("reason", request->reason()); !s.ok()) return s;
  return Answer(runtime_->ForceAbort(request->txid(), request->reason()), response);
}

grpc::Status AdminService::MarkBranchDone(grpc::ServerContext* context,
                                          const v1::MarkBranchDoneRequest* request,
                                          v1::AdminActionResponse* response) {
  if (grpc::Status admitted =
          AdmitCall(policy_, *context, "/txcoord.v1.CoordinatorAdmin/MarkBranchDone");
      !admitted.ok()) {
    return admitted;
  }
  if (grpc::Status s = CheckTxid(request->txid()); !s.ok()) return s;
  if (!IsValidName(request->participant())) {
    return Invalid("participant must be 1 to 128 characters of [A-Za-z0-9_.:-]");
  }
  if (grpc::Status s = CheckNote("note", request->note()); !s.ok()) return s;
  return Answer(runtime_->MarkBranchDone(request->txid(), request->participant(), request->note()),
                response);
}

}  // namespace txcoord::coordinator
