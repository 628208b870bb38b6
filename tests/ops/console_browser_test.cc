// The web console in a real headless Chromium against a real deployment: an
// operator on call finds a transaction stuck in phase 2, brings its agent
// back and presses Retry. Screenshots are kept as artifacts. Skipped when
// Chromium is not installed.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/agent_client.h"
#include "client/client.h"
#include "common/failpoint.h"
#include "gtest/gtest.h"
#include "harness/cluster.h"
#include "nlohmann/json.hpp"
#include "tests/ops/headless_browser.h"
#include "tests/ops/scrape.h"

namespace txcoord::testing {
namespace {

using nlohmann::json;

// The address in the coordinator's "serving HTTP on HOST:PORT" log line,
// which follows its gRPC "listening on" line by a moment.
absl::StatusOr<std::string> HttpAddressFromLog(const std::string& log_path) {
  const std::string kMarker = " serving HTTP on ";
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    std::ifstream log(log_path);
    std::string line;
    while (std::getline(log, line)) {
      const size_t at = line.find(kMarker);
      if (at != std::string::npos) return line.substr(at + kMarker.size());
    }
    if (absl::Now() >= deadline) {
      return absl::NotFoundError(absl::StrCat("no \"serving HTTP on\" line in ", log_path));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

// GET of a JSON route; an error unless it answers 200.
absl::StatusOr<json> GetJson(const std::string& address, const std::string& path) {
  absl::StatusOr<std::string> response = HttpGet(address, path);
  if (!response.ok()) return response.status();
  const size_t body = response->find("\r\n\r\n");
  if (!absl::StartsWith(*response, "HTTP/1.1 200") || body == std::string::npos) {
    return absl::InternalError(absl::StrCat("GET ", path, ": ", *response));
  }
  json parsed = json::parse(response->substr(body + 4), nullptr,
                            /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::DataLossError(absl::StrCat("GET ", path, ": not JSON"));
  return parsed;
}

// Where screenshots go: $TXCOORD_TEST_ARTIFACTS, else
// console_browser_test_artifacts/ under the working directory (ctest runs
// the test in its build directory).
std::string ArtifactDir() {
  const char* dir = std::getenv("TXCOORD_TEST_ARTIFACTS");
  std::filesystem::path path =
      dir != nullptr && *dir != '\0'
          ? std::filesystem::path(dir)
          : std::filesystem::current_path() / "console_browser_test_artifacts";
  std::error_code error;
  std::filesystem::create_directories(path, error);
  return std::filesystem::absolute(path).string();
}

// A JavaScript string literal.
std::string Js(const std::string& text) { return json(text).dump(); }

class ConsoleBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = FindChromium();
    if (!chromium_.has_value()) {
      GTEST_SKIP() << "chromium is not installed (scripts/install-deps installs it)";
    }
    ClusterOptions options;
    options.agents = 2;
    // Phase 2 backs off to long waits: once the agent is back, only the
    // operator's Retry finishes the transaction soon.
    options.coordinator_flags = {"--http_listen=127.0.0.1:0", "--phase2_retry_max=1h"};
    absl::StatusOr<std::unique_ptr<Cluster>> cluster = Cluster::Start(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    client_ = std::make_unique<Client>(cluster_->coordinator_address());
    for (int i = 0; i < cluster_->agent_count(); ++i) {
      agents_.push_back(std::make_unique<AgentClient>(cluster_->agent_address(i)));
      absl::StatusOr<ExecuteResult> created = agents_.back()->Execute(
          "", {{"CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)", {}},
               {"INSERT INTO kv VALUES (1, 0)", {}}});
      ASSERT_TRUE(created.ok()) << created.status();
    }
    absl::StatusOr<std::string> http = HttpAddressFromLog(cluster_->coordinator_log());
    ASSERT_TRUE(http.ok()) << http.status();
    http_ = *http;

    BrowserOptions browser;
    browser.binary = *chromium_;
    browser.dir = absl::StrCat(cluster_->dir(), "/browser");
    std::filesystem::create_directories(browser.dir);
    absl::StatusOr<std::unique_ptr<HeadlessBrowser>> started = HeadlessBrowser::Start(browser);
    ASSERT_TRUE(started.ok()) << started.status();
    browser_ = *std::move(started);
  }

  void TearDown() override {
    if (browser_ != nullptr) {
      EXPECT_TRUE(browser_->page_errors().empty()) << "the page reported errors:\n"
                                                   << absl::StrJoin(browser_->page_errors(), "\n");
    }
    browser_.reset();
    agents_.clear();
    client_.reset();
    if (cluster_ == nullptr) return;
    (void)cluster_->StopAll();
    if (HasFailure()) {
      cluster_->KeepDir();
      std::cerr << "cluster data, daemon logs and chromium.log kept in " << cluster_->dir() << "\n";
    }
  }

  // Begins a transaction that sets kv.v at the given agents.
  std::string BeginAndWrite(const std::vector<int>& at, int64_t value) {
    absl::StatusOr<std::string> txid = client_->Begin(absl::Seconds(60));
    EXPECT_TRUE(txid.ok()) << txid.status();
    if (!txid.ok()) return "";
    for (int i : at) {
      absl::StatusOr<ExecuteResult> written =
          agents_[i]->Execute(*txid, {{"UPDATE kv SET v = ?1 WHERE k = 1", {value}}});
      EXPECT_TRUE(written.ok()) << written.status();
    }
    return *txid;
  }

  // Commits a few one-branch transactions and waits for the chart to plot
  // them (it needs a scrape before and after).
  void CommitSomeAndWaitForTheChart(int points) {
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<CommitResult> committed = client_->Commit(BeginAndWrite({0}, i));
      ASSERT_TRUE(committed.ok() && committed->committed) << committed.status();
    }
    ASSERT_TRUE(browser_
                    ->WaitFor(absl::StrCat("Number(document.querySelector('#latency-chart')"
                                           ".dataset.points) >= ",
                                           points),
                              absl::Seconds(15))
                    .ok());
  }

  void SaveScreenshot(const std::string& name) {
    absl::StatusOr<std::string> png = browser_->Screenshot();
    ASSERT_TRUE(png.ok()) << png.status();
    const std::string path = absl::StrCat(ArtifactDir(), "/", name);
    std::ofstream file(path, std::ios::binary);
    file << *png;
    file.close();
    ASSERT_TRUE(file.good()) << "cannot write " << path;
    std::cout << "screenshot: " << path << "\n";
  }

  // The value of a JavaScript expression in the page; an error becomes a
  // string naming it, so that a failed check prints it instead of crashing.
  json Eval(const std::string& expression) {
    absl::StatusOr<json> value = browser_->Evaluate(expression);
    return value.ok() ? *value : json(absl::StrCat("error: ", value.status().ToString()));
  }

  // The console's row of `txid` (a JavaScript expression; undefined if none).
  static std::string Row(const std::string& txid) {
    return absl::StrCat(
        "[...document.querySelectorAll('#transactions tbody tr')]"
        ".find((r) => r.dataset.txid === ",
        Js(txid), ")");
  }

  std::optional<std::string> chromium_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Client> client_;
  std::vector<std::unique_ptr<AgentClient>> agents_;
  std::string http_;
  std::unique_ptr<HeadlessBrowser> browser_;
};

TEST_F(ConsoleBrowserTest, OperatorFindsStuckCommitAndRetryFinishesIt) {
  // agent1 dies when phase 2 reaches it: prepared, then gone.
  cluster_->SetAgentExtraFlags(1, {"--failpoints=before-commit-apply=crash"});
  ASSERT_TRUE(cluster_->RestartAgent(1).ok());
  cluster_->SetAgentExtraFlags(1, {});
  agents_[1] = std::make_unique<AgentClient>(cluster_->agent_address(1));

  ASSERT_TRUE(browser_->Navigate(absl::StrCat("http://", http_, "/ui")).ok());
  ASSERT_TRUE(browser_
                  ->WaitFor("document.querySelector('[data-counter=commits]')."
                            "textContent !== '–'",
                            absl::Seconds(10))
                  .ok());
  CommitSomeAndWaitForTheChart(1);
  CommitSomeAndWaitForTheChart(2);

  const std::string txid = BeginAndWrite({0, 1}, 42);
  ASSERT_FALSE(txid.empty());
  absl::StatusOr<CommitResult> committed = client_->Commit(txid);
  ASSERT_TRUE(committed.ok()) << committed.status();
  ASSERT_TRUE(committed->committed) << committed->reason;
  absl::StatusOr<ExitStatus> died = cluster_->agent(1)->Wait(absl::Seconds(30));
  ASSERT_TRUE(died.ok()) << died.status();
  ASSERT_EQ(died->code, kFailpointExitCode);

  // Enough failed attempts that the next one is seconds away (the backoff
  // doubles from 50 ms): the Retry below is what finishes it.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    absl::StatusOr<json> tx = GetJson(http_, absl::StrCat("/v1/admin/transactions/", txid));
    ASSERT_TRUE(tx.ok()) << tx.status();
    if ((*tx)["branches"][1]["phase2_attempts"].get<int>() >= 8) break;
    ASSERT_LT(absl::Now(), deadline) << tx->dump();
    absl::SleepFor(absl::Milliseconds(100));
  }

  // The console lists it as stuck, with the failing branch and its error.
  const std::string row = Row(txid);
  absl::Status listed =
      browser_->WaitFor(absl::StrCat(row, ".classList.contains('stuck') && ", row,
                                     ".textContent.includes('COMMITTING') && ", row,
                                     ".textContent.includes('phase 2 failing at agent1') && ", row,
                                     ".querySelector('td.error').textContent.startsWith('agent1: "
                                     "UNAVAILABLE')"),
                        absl::Seconds(10));
  ASSERT_TRUE(listed.ok()) << listed << "\nrow: " << Eval(row + "?.outerHTML");

  // Its detail view offers Retry and, for the unacknowledged branch only,
  // Mark done.
  ASSERT_TRUE(
      browser_->Click(absl::StrCat("#transactions tr[data-txid=", Js(txid), "] button")).ok());
  ASSERT_TRUE(browser_
                  ->WaitFor(absl::StrCat("!document.querySelector('#detail').hidden && ",
                                         "document.querySelector('#detail-txid').textContent === ",
                                         Js(txid)),
                            absl::Seconds(10))
                  .ok());
  EXPECT_EQ(Eval("[...document.querySelectorAll('#detail-branches button')]"
                 ".map((b) => b.getAttribute('aria-label')).join()"),
            "Mark branch agent1 done");
  EXPECT_EQ(Eval("document.querySelector('#retry').hidden"), false);
  EXPECT_EQ(Eval("document.querySelector('#abort').hidden"), true);
  SaveScreenshot("stuck_transaction.png");

  // Mark done asks for a note and warns first; cancelling sends nothing.
  ASSERT_TRUE(browser_->Click("#detail-branches button").ok());
  ASSERT_TRUE(browser_
                  ->WaitFor("document.querySelector('#ask').open && document.querySelector("
                            "'#ask-warning').textContent.includes('heuristic decision')",
                            absl::Seconds(5))
                  .ok());
  SaveScreenshot("mark_done_dialog.png");
  ASSERT_TRUE(browser_->Click("#ask-cancel").ok());
  ASSERT_TRUE(browser_->WaitFor("!document.querySelector('#ask').open", absl::Seconds(5)).ok());
  EXPECT_EQ(Eval("document.querySelector('#action-result').textContent"), "");

  ASSERT_TRUE(cluster_->StartAgent(1).ok());
  ASSERT_TRUE(browser_->Click("#retry").ok());
  absl::Status answered = browser_->WaitFor(
      "document.querySelector('#action-result.ok')?."
      "textContent.startsWith('Retry: ')",
      absl::Seconds(10));
  ASSERT_TRUE(answered.ok()) << answered << "\n"
                             << Eval("document.querySelector('#action-result').textContent");
  std::cout << "console says: " << Eval("document.querySelector('#action-result').textContent")
            << "\n";

  absl::Status gone = browser_->WaitFor(absl::StrCat(row, " === undefined"), absl::Seconds(20));
  ASSERT_TRUE(gone.ok()) << gone;
  absl::StatusOr<json> outcome = GetJson(http_, absl::StrCat("/v1/transactions/", txid));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ((*outcome)["state"], "COMMITTED") << outcome->dump();
  std::ifstream log(cluster_->coordinator_log());
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_TRUE(absl::StrContains(text.str(), absl::StrCat("txid=", txid, " operator retry")));
  SaveScreenshot("after_retry.png");
}

}  // namespace
}  // namespace txcoord::testing
