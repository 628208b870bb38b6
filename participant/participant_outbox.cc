// The participant's side of transactional messages: checking what a service
// publishes, writing a committing branch's messages to the outbox, and the
// outbox calls of the relay and of operators (see outbox_store.h).
#include "absl/strings/str_cat.h"
#include "common/sqlite_db.h"
#include "participant/outbox_store.h"
#include "participant/participant_impl.h"

namespace txcoord::participant {

absl::Status Participant::Impl::CheckMessages(const std::vector<OutboxMessage>& messages) const {
  // A branch's earlier calls count too: Execute checks that again with
  // the branch in hand.
  if (messages.size() > options_.outbox.max_messages) {
    return absl::InvalidArgumentError(absl::StrCat("too many messages: ", messages.size(),
                                                   "; at most ", options_.outbox.max_messages,
                                                   " (the agent's --outbox_max_messages)"));
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    absl::Status checked =
        CheckOutboxMessage(absl::StrCat("messages[", i, "]"), messages[i], options_.outbox);
    if (!checked.ok()) return checked;
  }
  return absl::OkStatus();
}

absl::Status Participant::Impl::InsertBranchMessagesLocked(const Branch& branch) {
  if (branch.messages.empty()) return absl::OkStatus();
  std::vector<std::string> ids;
  ids.reserve(branch.messages.size());
  for (size_t i = 0; i < branch.messages.size(); ++i) {
    ids.push_back(BranchMessageId(branch.txid, options_.name, i));
  }
  return InsertOutboxRows(db(), branch.txid, ids, branch.messages, Now());
}

void Participant::Impl::NotifyOutboxLocked(size_t added) {
  if (added > 0 && options_.on_outbox_pending) options_.on_outbox_pending();
}

absl::StatusOr<std::vector<OutboxRow>> Participant::PendingOutbox(size_t limit) {
  return impl_->WithConnection([&](sqlite3* db) { return LoadPendingOutbox(db, limit); });
}

absl::Status Participant::RecordOutboxAttempts(const std::vector<OutboxAttempt>& attempts) {
  const absl::Time now = impl_->Now();
  return impl_->WithConnection(
      [&](sqlite3* db) { return txcoord::participant::RecordOutboxAttempts(db, attempts, now); });
}

absl::StatusOr<OutboxCounts> Participant::CountOutbox(bool count_delivered) {
  return impl_->WithConnection(
      [&](sqlite3* db) { return txcoord::participant::CountOutbox(db, count_delivered); });
}

absl::StatusOr<std::vector<OutboxRow>> Participant::ListOutbox(std::optional<OutboxState> state,
                                                               size_t limit) {
  return impl_->WithConnection(
      [&](sqlite3* db) { return txcoord::participant::ListOutbox(db, state, limit); });
}

absl::StatusOr<OutboxRow> Participant::GetOutboxMessage(const std::string& id) {
  absl::StatusOr<std::optional<OutboxRow>> row =
      impl_->WithConnection([&](sqlite3* db) { return GetOutboxRow(db, id); });
  if (!row.ok()) return row.status();
  if (!row->has_value()) {
    return absl::NotFoundError(absl::StrCat("no message ", id, " in the outbox"));
  }
  return **std::move(row);
}

absl::StatusOr<int64_t> Participant::RetryOutbox(const std::vector<std::string>& ids) {
  const absl::Time now = impl_->Now();
  absl::StatusOr<int64_t> retried =
      impl_->WithConnection([&](sqlite3* db) { return RetryOutboxRows(db, ids, now); });
  if (retried.ok()) impl_->NotifyOutbox(static_cast<size_t>(*retried));
  return retried;
}

absl::StatusOr<int64_t> Participant::PurgeOutbox(OutboxState state,
                                                 const std::vector<std::string>& ids) {
  return impl_->WithConnection([&](sqlite3* db) { return PurgeOutboxRows(db, state, ids); });
}

absl::StatusOr<int64_t> Participant::DeleteDeliveredOutbox(absl::Time cutoff, size_t limit) {
  return impl_->WithConnection(
      [&](sqlite3* db) { return DeleteDeliveredBefore(db, cutoff, limit); });
}

}  // namespace txcoord::participant
