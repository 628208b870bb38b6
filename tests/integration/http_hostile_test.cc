// Hostile input to the HTTP/JSON ports of real daemons: malformed and
// ill-typed JSON, unknown and missing fields, invalid UTF-8, an oversized
// body, a wrong content type, a body that never ends and a crowd of idle
// connections. Each gets its exact HTTP code and error code; afterwards
// both daemons still serve and no database changed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "harness/sqlite_inspect.h"
#include "tests/integration/http_fixture.h"

namespace txcoord::testing {
namespace {

// A TCP connection to "127.0.0.1:PORT", connected without blocking; -1 on
// failure. The caller closes it.
int OpenSocket(const std::string& address) {
  std::pair<std::string, std::string> host_port = absl::StrSplit(address, ':');
  int port = 0;
  if (!absl::SimpleAtoi(host_port.second, &port)) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host_port.first.c_str(), &addr.sin_addr) != 1) return -1;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// Waits until `fd` is connected; false past `timeout`.
bool AwaitConnected(int fd, absl::Duration timeout) {
  pollfd p = {fd, POLLOUT, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return false;
  int error = 0;
  socklen_t len = sizeof(error);
  return getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error == 0;
}

// Everything the peer sends until it closes the connection; `*closed`
// tells whether it did within `timeout`.
std::string ReadUntilClosed(int fd, absl::Duration timeout, bool* closed) {
  std::string data;
  *closed = false;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    pollfd p = {fd, POLLIN, 0};
    const int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (poll(&p, 1, std::max(left, 1)) != 1) continue;
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) {
      *closed = true;
      break;
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

class HttpHostileTest : public HttpClusterFixture {
 protected:
  static constexpr absl::Duration kReadTimeout = absl::Seconds(1);

  ClusterOptions Options() override {
    ClusterOptions options = HttpClusterFixture::Options();
    options.agents = 1;
    // Short, so that a stalled body and idle connections end quickly.
    for (auto* flags : {&options.coordinator_flags, &options.agent_flags}) {
      flags->push_back("--http_read_timeout=1s");
      flags->push_back("--http_idle_timeout=1s");
    }
    return options;
  }

  void SetUp() override {
    HttpClusterFixture::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(agents_[0]
                    ->Execute("", {{"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", {}},
                                   {"INSERT INTO t VALUES (1, 'one'), (2, 'two')", {}}})
                    .ok());
    before_ = Snapshot();
  }

  std::string Snapshot() {
    absl::StatusOr<std::set<std::string>> rows =
        QueryStrings(cluster_->agent_db(0), "SELECT id || '=' || quote(v) FROM t");
    EXPECT_TRUE(rows.ok()) << rows.status();
    std::string all;
    for (const std::string& row : rows.value_or(std::set<std::string>{})) {
      absl::StrAppend(&all, row, ";");
    }
    return all;
  }

  // Both daemons still answer ordinary requests, and t is as it was.
  void ExpectStillServingAndUnchanged(const std::string& after) {
    ASSERT_TRUE(cluster_->CheckRunning().ok()) << after << ": " << cluster_->CheckRunning();
    HttpReply begin = HttpPost(coordinator_http(), "/v1/transactions");
    EXPECT_EQ(begin.status, 200) << after << ": " << begin;
    const std::string select = R"({"statements": [{"sql": "SELECT COUNT(*) FROM t"}]})";
    HttpReply count = HttpRequestRaw(agent_http(0), "/v1/execute", &select);
    EXPECT_EQ(count.status, 200) << after << ": " << count;
    EXPECT_EQ(Snapshot(), before_) << after;
  }

  std::string before_;
};

TEST_F(HttpHostileTest, EachBadRequestGetsItsCodeAndChangesNothing) {
  struct Case {
    std::string what;
    bool to_coordinator;
    std::string path;
    std::string body;
    std::string content_type;
    int status;
    std::string code;
  };
  const std::string json = "application/json";
  const std::string ok_statement = R"j([{"sql": "INSERT INTO t VALUES (9, 'x')"}])j";
  const std::vector<Case> cases = {
      {"malformed JSON", false, "/v1/execute", R"({"statements": [)", json, 400,
       "INVALID_ARGUMENT"},
      {"malformed JSON", true, "/v1/transactions", R"({"timeout_ms": })", json, 400,
       "INVALID_ARGUMENT"},
      {"not an object", false, "/v1/execute", "[1, 2]", json, 400, "INVALID_ARGUMENT"},
      {"statements not an array", false, "/v1/execute", R"({"statements": "SELECT 1"})", json, 400,
       "INVALID_ARGUMENT"},
      {"sql not a string", false, "/v1/execute", R"({"statements": [{"sql": 7}]})", json, 400,
       "INVALID_ARGUMENT"},
      {"txid not a string", false, "/v1/execute",
       absl::StrCat(R"({"txid": 12, "statements": )", ok_statement, "}"), json, 400,
       "INVALID_ARGUMENT"},
      {"prepare not a bool", false, "/v1/execute",
       absl::StrCat(R"({"prepare": "yes", "statements": )", ok_statement, "}"), json, 400,
       "INVALID_ARGUMENT"},
      {"negative lock timeout", false, "/v1/execute",
       absl::StrCat(R"({"lock_timeout_ms": -1, "statements": )", ok_statement, "}"), json, 400,
       "INVALID_ARGUMENT"},
      {"param of no SQL type", false, "/v1/execute",
       R"j({"statements": [{"sql": "INSERT INTO t VALUES (9, ?1)", "params": [[1]]}]})j", json, 400,
       "INVALID_ARGUMENT"},
      {"timeout_ms a string", true, "/v1/transactions", R"({"timeout_ms": "10"})", json, 400,
       "INVALID_ARGUMENT"},
      {"unknown field", false, "/v1/execute",
       absl::StrCat(R"({"extra": 1, "statements": )", ok_statement, "}"), json, 400,
       "INVALID_ARGUMENT"},
      {"unknown statement field", false, "/v1/execute",
       R"j({"statements": [{"sql": "INSERT INTO t VALUES (9, 'x')", "parms": []}]})j", json, 400,
       "INVALID_ARGUMENT"},
      {"unknown field", true, "/v1/transactions", R"({"timeout": 10})", json, 400,
       "INVALID_ARGUMENT"},
      {"unknown field", false, "/v1/release", R"({"txid": "it.1.1", "all": true})", json, 400,
       "INVALID_ARGUMENT"},
      {"execute without statements", false, "/v1/execute", "{}", json, 400, "INVALID_ARGUMENT"},
      {"statement without sql", false, "/v1/execute", R"({"statements": [{"params": []}]})", json,
       400, "INVALID_ARGUMENT"},
      {"no statements", false, "/v1/execute", R"({"statements": []})", json, 400,
       "INVALID_ARGUMENT"},
      {"release without txid", false, "/v1/release", "{}", json, 400, "INVALID_ARGUMENT"},
      {"resolve without decision", false, "/v1/admin/in-doubt/it.1.1/resolve", "{}", json, 400,
       "INVALID_ARGUMENT"},
      {"invalid UTF-8 in sql", false, "/v1/execute",
       "{\"statements\": [{\"sql\": \"INSERT INTO t VALUES (9, '\xff')\"}]}", json, 400,
       "INVALID_ARGUMENT"},
      {"invalid UTF-8 in a text param", false, "/v1/execute",
       "{\"statements\": [{\"sql\": \"INSERT INTO t VALUES (9, ?1)\", \"params\": "
       "[\"\xc3\x28\"]}]}",
       json, 400, "INVALID_ARGUMENT"},
      {"invalid UTF-8 in a reason", true, "/v1/admin/transactions/it.1.1/abort",
       "{\"reason\": \"\xed\xa0\x80\"}", json, 400, "INVALID_ARGUMENT"},
      {"wrong content type", false, "/v1/execute",
       absl::StrCat(R"({"statements": )", ok_statement, "}"), "text/plain", 415,
       "INVALID_ARGUMENT"},
      {"form content type", true, "/v1/transactions", "timeout_ms=5",
       "application/x-www-form-urlencoded", 415, "INVALID_ARGUMENT"},
      {"body over 16 MiB", false, "/v1/execute", std::string((16 << 20) + 1, ' '), json, 413,
       "RESOURCE_EXHAUSTED"},
  };
  for (const Case& c : cases) {
    const std::string& address = c.to_coordinator ? coordinator_http() : agent_http(0);
    HttpReply reply = HttpRequestRaw(address, c.path, &c.body, c.content_type);
    EXPECT_EQ(reply.status, c.status) << c.what << " (" << c.path << "): " << reply;
    EXPECT_EQ(reply.body["code"], c.code) << c.what << " (" << c.path << "): " << reply;
  }
  ExpectStillServingAndUnchanged("the bad requests");
}

TEST_F(HttpHostileTest, BodyThatNeverEndsIsCutOffAfterTheReadTimeout) {
  for (const std::string& address : {agent_http(0), coordinator_http()}) {
    const int fd = OpenSocket(address);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(AwaitConnected(fd, absl::Seconds(5)));
    const std::string partial =
        "POST /v1/execute HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{\"statem";
    ASSERT_EQ(write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
    const absl::Time start = absl::Now();
    bool closed = false;
    const std::string answer = ReadUntilClosed(fd, absl::Seconds(10), &closed);
    close(fd);
    EXPECT_TRUE(closed) << address << " kept a stalled request open";
    EXPECT_LT(absl::Now() - start, 4 * kReadTimeout) << address;
    EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 400 ")) << address << ": " << answer;
    EXPECT_NE(answer.find("\"code\":\"INVALID_ARGUMENT\""), std::string::npos) << answer;
  }
  ExpectStillServingAndUnchanged("a stalled body");
}

TEST_F(HttpHostileTest, IdleConnectionsDoNotStopTheDaemonsServing) {
  // Three times the port's workers and queue: they are all busy holding
  // idle connections until the idle timeout frees them, a batch at a time.
  constexpr int kIdle = 100;
  for (const std::string& address : {agent_http(0), coordinator_http()}) {
    std::vector<int> idle;
    for (int i = 0; i < kIdle; ++i) {
      const int fd = OpenSocket(address);
      ASSERT_GE(fd, 0);
      idle.push_back(fd);
    }
    int connected = 0;
    for (int fd : idle) connected += AwaitConnected(fd, absl::Seconds(10)) ? 1 : 0;
    EXPECT_EQ(connected, kIdle) << address;

    const absl::Time start = absl::Now();
    const std::string select = R"({"statements": [{"sql": "SELECT COUNT(*) FROM t"}]})";
    HttpReply reply = address == coordinator_http()
                          ? HttpGet(address, "/v1/admin/transactions")
                          : HttpRequestRaw(address, "/v1/execute", &select);
    EXPECT_EQ(reply.status, 200) << address << ": " << reply;
    // Each batch of 32 idle connections is closed after the 1 s idle
    // timeout: well within this, whatever the kernel does with the rest.
    EXPECT_LT(absl::Now() - start, absl::Seconds(20)) << address;
    for (int fd : idle) close(fd);
  }
  ExpectStillServingAndUnchanged("idle connections");
}

}  // namespace
}  // namespace txcoord::testing
