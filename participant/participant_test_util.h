// Test helpers for the participant: a recording fake Enlister, a Scheduler
// on manual time, a fixture that opens a Participant on a fresh database
// file, and a second plain SQLite connection that shows what is committed.
#ifndef TXCOORD_PARTICIPANT_PARTICIPANT_TEST_UTIL_H_
#define TXCOORD_PARTICIPANT_PARTICIPANT_TEST_UTIL_H_

#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/fake_scheduler.h"
#include "common/scheduler.h"
#include "common/sql_value.h"
#include "gtest/gtest.h"
#include "participant/participant.h"

namespace txcoord::participant::testing {

class FakeEnlister final : public Enlister {
 public:
  struct Call {
    std::string txid;
    bool prepared;
    uint64_t token = 0;  // not compared: tests that care read it directly
    bool operator==(const Call& other) const {
      return txid == other.txid && prepared == other.prepared;
    }
  };

  absl::Status Enlist(const std::string& txid, uint64_t branch_token, bool prepared) override {
    std::function<void()> hook;
    absl::Status result;
    {
      absl::MutexLock lock(&mu_);
      calls_.push_back({txid, prepared, branch_token});
      hook = hook_;
      if (!results_.empty()) {
        result = results_.front();
        results_.pop_front();
      } else if (down_.has_value()) {
        result = *down_;
      }
    }
    if (hook) hook();
    return result;
  }

  // While held, EnlistAsync records the call and keeps its callback for
  // AnswerHeld instead of answering.
  void EnlistAsync(const std::string& txid, uint64_t branch_token, bool prepared,
                   std::function<void(absl::Status)> done) override {
    std::function<void()> async_hook;
    {
      absl::MutexLock lock(&mu_);
      async_hook = async_hook_;
    }
    if (async_hook) async_hook();
    {
      absl::MutexLock lock(&mu_);
      if (hold_async_) {
        calls_.push_back({txid, prepared, branch_token});
        held_.push_back(std::move(done));
        return;
      }
    }
    Enlister::EnlistAsync(txid, branch_token, prepared, std::move(done));
  }
  void HoldAsync() {
    absl::MutexLock lock(&mu_);
    hold_async_ = true;
  }
  // Answers every held call with `status`; returns how many there were.
  size_t AnswerHeld(const absl::Status& status) {
    std::vector<std::function<void(absl::Status)>> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto& done : held) done(status);
    return held.size();
  }
  // Answers the oldest held call with `status`; false if none is held.
  bool AnswerOldestHeld(const absl::Status& status) {
    std::function<void(absl::Status)> done;
    {
      absl::MutexLock lock(&mu_);
      if (held_.empty()) return false;
      done = std::move(held_.front());
      held_.erase(held_.begin());
    }
    done(status);
    return true;
  }

  // The next calls answer these, in order; later ones answer OK.
  void FailNext(absl::Status status) {
    absl::MutexLock lock(&mu_);
    results_.push_back(std::move(status));
  }
  // Every later call answers `status` (after those given to FailNext),
  // until Up().
  void Down(absl::Status status) {
    absl::MutexLock lock(&mu_);
    down_ = std::move(status);
  }
  void Up() {
    absl::MutexLock lock(&mu_);
    down_.reset();
  }
  // Runs inside every later Enlist call.
  void SetHook(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    hook_ = std::move(hook);
  }
  // Runs at the start of every later EnlistAsync call.
  void SetAsyncHook(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    async_hook_ = std::move(hook);
  }
  std::vector<Call> calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // From now on VoteSigningFor offers this key and endpoint for every txid.
  void GiveVoteKey(std::string key, std::string endpoint) {
    absl::MutexLock lock(&mu_);
    signing_ = VoteSigning{std::move(key), std::move(endpoint)};
  }
  std::optional<VoteSigning> VoteSigningFor(const std::string& txid) override {
    absl::MutexLock lock(&mu_);
    return signing_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::Status> results_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> down_ ABSL_GUARDED_BY(mu_);
  std::function<void()> hook_ ABSL_GUARDED_BY(mu_);
  std::function<void()> async_hook_ ABSL_GUARDED_BY(mu_);
  bool hold_async_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void(absl::Status)>> held_ ABSL_GUARDED_BY(mu_);
  std::optional<VoteSigning> signing_ ABSL_GUARDED_BY(mu_);
};

using ::txcoord::FakeScheduler;

inline SqlStatement Sql(std::string sql, std::vector<SqlValue> params = {}) {
  return SqlStatement{std::move(sql), std::move(params)};
}

class ParticipantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/participant_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    options_.db_path = dir_ + "/service.db";
    options_.name = "svc";
    options_.default_lock_timeout = absl::Seconds(5);
    options_.branch_idle_timeout = absl::ZeroDuration();  // tests reap by hand
    // An unanswered vote is resent a few times, quickly.
    options_.vote_retry_time = absl::Milliseconds(100);
    options_.vote_retry_backoff = absl::Milliseconds(1);
    Open();
    ASSERT_TRUE(Local({Sql("CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT NOT NULL,"
                           " balance INTEGER NOT NULL)"),
                       Sql("CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE)"),
                       Sql("CREATE TABLE parents(id INTEGER PRIMARY KEY, name TEXT)"),
                       Sql("CREATE TABLE children(id INTEGER PRIMARY KEY,"
                           " parent_id INTEGER REFERENCES parents(id))"),
                       Sql("CREATE TABLE nopk(a, b)"),
                       Sql("INSERT INTO accounts VALUES (1, 'alice', 100), (2, 'bob', 50)"),
                       Sql("INSERT INTO parents VALUES (1, 'p1')")})
                    .ok());
  }

  void TearDown() override {
    participant_.reset();
    if (reader_ != nullptr) sqlite3_close(reader_);
    std::filesystem::remove_all(dir_);
  }

  void Open() {
    absl::StatusOr<std::unique_ptr<Participant>> opened = Participant::Open(options_, &enlister_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    participant_ = *std::move(opened);
  }
  void Reopen() {
    participant_.reset();
    Open();
  }

  absl::StatusOr<ExecuteResult> Exec(const std::string& txid, std::vector<SqlStatement> statements,
                                     absl::Duration lock_timeout = absl::ZeroDuration(),
                                     bool prepare = false) {
    return participant_->Execute(txid, statements, prepare, lock_timeout);
  }
  absl::StatusOr<ExecuteResult> Local(std::vector<SqlStatement> statements) {
    return Exec("", std::move(statements));
  }

  // What another process would see: committed rows only.
  std::vector<std::vector<std::string>> Committed(const std::string& sql) {
    if (reader_ == nullptr) {
      EXPECT_EQ(sqlite3_open(options_.db_path.c_str(), &reader_), SQLITE_OK);
    }
    std::vector<std::vector<std::string>> rows;
    char* error = nullptr;
    sqlite3_exec(
        reader_, sql.c_str(),
        [](void* out, int n, char** values, char**) {
          auto* rows = static_cast<std::vector<std::vector<std::string>>*>(out);
          rows->emplace_back();
          for (int i = 0; i < n; ++i) rows->back().push_back(values[i] ? values[i] : "NULL");
          return 0;
        },
        &rows, &error);
    EXPECT_EQ(error, nullptr) << error;
    sqlite3_free(error);
    return rows;
  }
  std::string CommittedValue(const std::string& sql) {
    auto rows = Committed(sql);
    return rows.empty() || rows[0].empty() ? "<none>" : rows[0][0];
  }
  // Writes as an outside process would, past the agent.
  void WriteBehindAgentsBack(const std::string& sql) { Committed(sql); }

  std::string dir_;
  ParticipantOptions options_;
  FakeEnlister enlister_;
  std::unique_ptr<Participant> participant_;
  sqlite3* reader_ = nullptr;
};

// The single value of a one-row, one-column result.
inline SqlValue OnlyValue(const absl::StatusOr<ExecuteResult>& result, size_t statement = 0) {
  if (!result.ok() || result->results.size() <= statement ||
      result->results[statement].rows.size() != 1 ||
      result->results[statement].rows[0].size() != 1) {
    ADD_FAILURE() << "expected one value from statement " << statement;
    return std::monostate{};
  }
  return result->results[statement].rows[0][0];
}

}  // namespace txcoord::participant::testing

#endif  // TXCOORD_PARTICIPANT_PARTICIPANT_TEST_UTIL_H_
