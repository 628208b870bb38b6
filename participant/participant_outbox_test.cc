// Transactional messages at the participant: a branch's messages reach the
// outbox exactly when the branch commits (prepared, one-phase, after a
// restart, or as a local batch), with stable ids; a bad message is refused
// and changes nothing.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "participant/participant_test_util.h"

namespace txcoord::participant::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kTx1[] = "c1.1.1";
constexpr char kTx2[] = "c1.1.2";

OutboxMessage Msg(std::string topic, std::string key, std::string payload) {
  return OutboxMessage{std::move(topic), std::move(key), std::move(payload), {}};
}

class ParticipantOutboxTest : public ParticipantTest {
 protected:
  absl::StatusOr<ExecuteResult> Run(const std::string& txid, std::vector<SqlStatement> statements,
                                    std::vector<OutboxMessage> messages, bool prepare = false) {
    ExecuteOptions options;
    options.prepare = prepare;
    options.messages = std::move(messages);
    return participant_->Execute(txid, statements, std::move(options));
  }
  // id, topic, key, payload of every outbox row, in commit order.
  std::vector<std::vector<std::string>> Outbox() {
    return Committed(
        "SELECT id, topic, key, CAST(payload AS TEXT) FROM _txcoord_outbox ORDER BY seq");
  }
};

TEST_F(ParticipantOutboxTest, CommittedBranchPutsItsMessagesInTheOutboxInOrder) {
  absl::StatusOr<ExecuteResult> first =
      Run(kTx1, {Sql("UPDATE accounts SET balance = 90 WHERE id = 1")},
          {Msg("bank.debited", "acct-1", "10")});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(first->message_ids, ElementsAre("c1.1.1/svc/0"));
  absl::StatusOr<ExecuteResult> second =
      Run(kTx1, {}, {Msg("bank.audit", "", "a"), Msg("bank.audit", "", "b")});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(second->message_ids, ElementsAre("c1.1.1/svc/1", "c1.1.1/svc/2"));
  EXPECT_TRUE(Outbox().empty()) << "visible before commit";

  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  EXPECT_TRUE(Outbox().empty()) << "visible while prepared";
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_THAT(Outbox(), ElementsAre(ElementsAre("c1.1.1/svc/0", "bank.debited", "acct-1", "10"),
                                    ElementsAre("c1.1.1/svc/1", "bank.audit", "", "a"),
                                    ElementsAre("c1.1.1/svc/2", "bank.audit", "", "b")));
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "90");
}

TEST_F(ParticipantOutboxTest, AbortedBranchLeavesNoMessage) {
  ASSERT_TRUE(Run(kTx1, {Sql("UPDATE accounts SET balance = 1 WHERE id = 1")},
                  {Msg("bank.debited", "acct-1", "x")})
                  .ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  ASSERT_TRUE(participant_->Abort(kTx1).ok());
  ASSERT_TRUE(Run(kTx2, {}, {Msg("bank.never", "", "y")}).ok());
  ASSERT_TRUE(participant_->Abort(kTx2).ok());
  EXPECT_TRUE(Outbox().empty());
  // And the commit of a later branch is not confused by them.
  ASSERT_TRUE(Run("c1.1.3", {}, {Msg("bank.later", "", "z")}).ok());
  ASSERT_EQ(participant_->CommitOnePhase("c1.1.3").value(), Outcome::kCommitted);
  EXPECT_THAT(Outbox(), ElementsAre(ElementsAre("c1.1.3/svc/0", "bank.later", "", "z")));
}

TEST_F(ParticipantOutboxTest, MessagesAloneAreAWriteThatVotesYesAndEnlists) {
  absl::StatusOr<ExecuteResult> result = Run(kTx1, {}, {Msg("t.a", "", "p")}, /*prepare=*/true);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->vote, Vote::kYes);
  ASSERT_FALSE(enlister_.calls().empty());
  EXPECT_EQ(enlister_.calls().back().txid, kTx1);
  EXPECT_TRUE(enlister_.calls().back().prepared);
}

TEST_F(ParticipantOutboxTest, PreparedMessagesSurviveARestartAndCommitAfterIt) {
  ASSERT_TRUE(Run(kTx1, {Sql("UPDATE accounts SET balance = 7 WHERE id = 2")},
                  {Msg("bank.credited", "acct-2", "7"), Msg("bank.credited", "acct-2", "8")})
                  .ok());
  ASSERT_EQ(participant_->Prepare(kTx1).value(), Vote::kYes);
  Reopen();
  EXPECT_TRUE(Outbox().empty());
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_THAT(Outbox(), ElementsAre(ElementsAre("c1.1.1/svc/0", "bank.credited", "acct-2", "7"),
                                    ElementsAre("c1.1.1/svc/1", "bank.credited", "acct-2", "8")));
  // A repeated Commit (the coordinator retrying phase 2) adds nothing.
  ASSERT_TRUE(participant_->Commit(kTx1).ok());
  EXPECT_EQ(Outbox().size(), 2u);
}

TEST_F(ParticipantOutboxTest, OnePhaseCommitPublishesAndItsRetryDoesNotAgain) {
  ASSERT_TRUE(Run(kTx1, {Sql("UPDATE accounts SET balance = 3 WHERE id = 1")},
                  {Msg("bank.debited", "acct-1", "3")})
                  .ok());
  ASSERT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  ASSERT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(Outbox().size(), 1u);
}

TEST_F(ParticipantOutboxTest, LocalBatchCommitsItsMessagesWithItsRows) {
  absl::StatusOr<ExecuteResult> result =
      Run("", {Sql("UPDATE accounts SET balance = 5 WHERE id = 1")},
          {Msg("bank.local", "k", "1"), Msg("bank.local", "k", "2")});
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->message_ids.size(), 2u);
  EXPECT_THAT(result->message_ids[0], ::testing::StartsWith("local/svc/"));
  EXPECT_NE(result->message_ids[0], result->message_ids[1]);
  const std::vector<std::vector<std::string>> outbox = Outbox();
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0][0], result->message_ids[0]);
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "5");
  // A failing statement takes its messages with it.
  EXPECT_FALSE(
      Run("", {Sql("INSERT INTO accounts VALUES (1, 'dup', 0)")}, {Msg("bank.local", "k", "3")})
          .ok());
  EXPECT_EQ(Outbox().size(), 2u);
  // Ids never repeat, not even after a restart.
  Reopen();
  absl::StatusOr<ExecuteResult> again = Run("", {}, {Msg("bank.local", "k", "4")});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_NE(again->message_ids[0], result->message_ids[0]);
}

struct BadMessage {
  std::string name;
  OutboxMessage message;
  std::string error;
};

TEST_F(ParticipantOutboxTest, BadMessagesAreRefusedByNameAndChangeNothing) {
  std::vector<BadMessage> cases = {
      {"empty topic", Msg("", "", "p"), "messages[0].topic is empty"},
      {"wildcard", Msg("bank.*", "", "p"), "messages[0].topic has the character"},
      {"full wildcard", Msg("bank.>", "", "p"), "messages[0].topic has the character"},
      {"system subject", Msg("$JS.API.STREAM.DELETE.x", "", "p"), "has the character"},
      {"empty token", Msg("bank..x", "", "p"), "empty token"},
      {"space", Msg("bank x", "", "p"), "has the character"},
      {"long topic", Msg(std::string(257, 'a'), "", "p"), "at most 256"},
      {"payload", Msg("t", "", std::string(options_.outbox.max_payload + 1, 'x')),
       "messages[0].payload is"},
      {"key utf8", Msg("t", "\xff", "p"), "messages[0].key is not valid UTF-8"},
      {"long key", Msg("t", std::string(257, 'k'), "p"), "messages[0].key is 257 bytes"},
      {"reserved header", {"t", "", "p", {{"Nats-Msg-Id", "x"}}}, "is reserved"},
      {"header utf8", {"t", "", "p", {{"h", "\xc3"}}}, "headers[0] value is not valid UTF-8"},
      {"header newline", {"t", "", "p", {{"h", "a\nb"}}}, "CR or LF"},
      {"header name", {"t", "", "p", {{"bad name", "v"}}}, "name may hold only"},
  };
  for (const BadMessage& c : cases) {
    absl::StatusOr<ExecuteResult> result =
        Run(kTx1, {Sql("UPDATE accounts SET balance = 0 WHERE id = 1")}, {c.message});
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(result.status().message(), HasSubstr(c.error)) << c.name;
    absl::StatusOr<ExecuteResult> local = Run("", {}, {c.message});
    EXPECT_EQ(local.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
  }
  EXPECT_EQ(participant_->BranchCount(), 0u);
  EXPECT_TRUE(Outbox().empty());
  EXPECT_EQ(CommittedValue("SELECT balance FROM accounts WHERE id = 1"), "100");
}

TEST_F(ParticipantOutboxTest, TooManyMessagesInOneBranchAreRefusedAndTheBranchKeepsItsOwn) {
  options_.outbox.max_messages = 3;
  Reopen();
  ASSERT_TRUE(Run(kTx1, {}, {Msg("t", "", "1"), Msg("t", "", "2")}).ok());
  absl::StatusOr<ExecuteResult> over = Run(kTx1, {}, {Msg("t", "", "3"), Msg("t", "", "4")});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(over.status().message(), HasSubstr("has 2 and this call adds 2; at most 3"));
  ASSERT_EQ(participant_->CommitOnePhase(kTx1).value(), Outcome::kCommitted);
  EXPECT_EQ(Outbox().size(), 2u);
  EXPECT_EQ(Run("", {}, std::vector<OutboxMessage>(4, Msg("t", "", "x"))).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ParticipantOutboxTest, RelayCallsMarkDeliveredRetryAndPurge) {
  ASSERT_TRUE(Run("", {}, {Msg("t", "a", "1"), Msg("t", "b", "2"), Msg("t", "c", "3")}).ok());
  absl::StatusOr<std::vector<OutboxRow>> pending = participant_->PendingOutbox(10);
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 3u);
  EXPECT_EQ((*pending)[0].message.payload, "1");
  OutboxAttempt delivered{(*pending)[0].seq, true};
  OutboxAttempt retry{(*pending)[1].seq, false, "refused", absl::Now() + absl::Hours(1), false};
  OutboxAttempt dead{(*pending)[2].seq, false, "refused again", absl::Now(), true};
  ASSERT_TRUE(participant_->RecordOutboxAttempts({delivered, retry, dead}).ok());
  OutboxCounts counts = participant_->CountOutbox().value();
  EXPECT_EQ(counts.pending, 1);
  EXPECT_EQ(counts.delivered, 1);
  EXPECT_EQ(counts.dead, 1);
  const std::string dead_id = (*pending)[2].id;
  EXPECT_EQ(participant_->GetOutboxMessage(dead_id).value().last_error, "refused again");
  EXPECT_EQ(participant_->GetOutboxMessage("nope").status().code(), absl::StatusCode::kNotFound);
  // Pending rows cannot be purged; dead ones can be retried, then are due.
  EXPECT_FALSE(participant_->PurgeOutbox(OutboxState::kPending, {}).ok());
  EXPECT_EQ(participant_->RetryOutbox({}).value(), 1);
  pending = participant_->PendingOutbox(10);
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ(pending->back().id, dead_id);
  EXPECT_EQ(pending->back().attempts, 0);
  EXPECT_EQ(participant_->PurgeOutbox(OutboxState::kDelivered, {}).value(), 1);
  EXPECT_EQ(participant_->CountOutbox().value().delivered, 0);
}

}  // namespace
}  // namespace txcoord::participant::testing
