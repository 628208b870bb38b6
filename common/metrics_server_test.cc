#include "common/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace txcoord {
namespace {

using metrics_server_internal::Reply;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string Page() { return "up 1\n"; }

TEST(MetricsReplyTest, GetMetricsServesThePage) {
  const std::string reply = Reply("GET /metrics HTTP/1.1\r\nHost: x", Page);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(reply, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(reply, HasSubstr("Content-Length: 5\r\n"));
  EXPECT_THAT(reply, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(reply, EndsWith("\r\n\r\nup 1\n"));
}

TEST(MetricsReplyTest, QueryStringIsIgnored) {
  EXPECT_THAT(Reply("GET /metrics?x=1 HTTP/1.0", Page), StartsWith("HTTP/1.1 200 OK"));
}

TEST(MetricsReplyTest, HeadSendsHeadersOnly) {
  const std::string reply = Reply("HEAD /metrics HTTP/1.1", Page);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(reply, HasSubstr("Content-Length: 5\r\n"));
  EXPECT_THAT(reply, EndsWith("\r\n\r\n"));
}

TEST(MetricsReplyTest, OtherPathsAre404) {
  EXPECT_THAT(Reply("GET / HTTP/1.1", Page), StartsWith("HTTP/1.1 404 Not Found"));
  EXPECT_THAT(Reply("GET /metrics/x HTTP/1.1", Page), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Reply("GET /metricsx HTTP/1.1", Page), StartsWith("HTTP/1.1 404"));
}

TEST(MetricsReplyTest, OtherMethodsAre405WithAllow) {
  const std::string reply = Reply("POST /metrics HTTP/1.1", Page);
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 405 Method Not Allowed"));
  EXPECT_THAT(reply, HasSubstr("Allow: GET, HEAD\r\n"));
}

TEST(MetricsReplyTest, MalformedRequestsAre400) {
  for (const std::string& head : std::vector<std::string>{
           "", "garbage", "GET /metrics", "GET  /metrics HTTP/1.1", "get /metrics HTTP/1.1",
           "GET metrics HTTP/1.1", std::string("GET /met\x01rics HTTP/1.1"),
           "GET /metrics HTTP/1.1 extra", std::string("\0\0\0", 3)}) {
    EXPECT_THAT(Reply(head, Page), StartsWith("HTTP/1.1 400 Bad Request")) << head;
  }
}

TEST(MetricsReplyTest, OtherHttpVersionsAre505) {
  EXPECT_THAT(Reply("GET /metrics HTTP/2.0", Page), StartsWith("HTTP/1.1 505"));
  EXPECT_THAT(Reply("GET /metrics SPDY/3", Page), StartsWith("HTTP/1.1 505"));
}

// A blocking TCP client with a generous receive timeout, so that a broken
// server fails the test instead of hanging it.
class TestConnection {
 public:
  explicit TestConnection(const std::string& address) {
    const size_t colon = address.rfind(':');
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(address.substr(colon + 1), &port));
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval timeout{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~TestConnection() { close(fd_); }

  bool connected() const { return connected_; }
  void Send(const std::string& bytes) {
    ASSERT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Everything until the server closes.
  std::string ReadAll() {
    std::string out;
    char buffer[4096];
    while (true) {
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::unique_ptr<MetricsServer> StartOrDie(const MetricsServerOptions& options = {},
                                          std::function<std::string()> render = Page) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server =
      MetricsServer::Start("127.0.0.1:0", std::move(render), options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(MetricsServerTest, ServesMetricsOverTcp) {
  std::unique_ptr<MetricsServer> server = StartOrDie();
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->address(), StartsWith("127.0.0.1:"));
  EXPECT_THAT(server->address(), Not(EndsWith(":0")));
  TestConnection client(server->address());
  ASSERT_TRUE(client.connected());
  client.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
  const std::string reply = client.ReadAll();
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(reply, EndsWith("up 1\n"));
}

TEST(MetricsServerTest, RequestInPiecesAndBareNewlinesIsServed) {
  std::unique_ptr<MetricsServer> server = StartOrDie();
  TestConnection client(server->address());
  client.Send("GET /met");
  client.Send("rics HTTP/1.0\n");
  client.Send("\n");
  EXPECT_THAT(client.ReadAll(), StartsWith("HTTP/1.1 200 OK"));
}

TEST(MetricsServerTest, UnknownPathIs404OverTcp) {
  std::unique_ptr<MetricsServer> server = StartOrDie();
  TestConnection client(server->address());
  client.Send("GET /admin HTTP/1.1\r\n\r\n");
  EXPECT_THAT(client.ReadAll(), StartsWith("HTTP/1.1 404 Not Found"));
}

TEST(MetricsServerTest, OversizedRequestGets431) {
  MetricsServerOptions options;
  options.max_request_bytes = 1024;
  std::unique_ptr<MetricsServer> server = StartOrDie(options);
  TestConnection client(server->address());
  client.Send("GET /metrics HTTP/1.1\r\nX: " + std::string(2000, 'a'));
  EXPECT_THAT(client.ReadAll(), StartsWith("HTTP/1.1 431"));
}

TEST(MetricsServerTest, SilentClientIsDisconnectedAfterTimeout) {
  MetricsServerOptions options;
  options.io_timeout = absl::Milliseconds(200);
  std::unique_ptr<MetricsServer> server = StartOrDie(options);
  TestConnection client(server->address());
  client.Send("GET /metr");
  // The server closes without a reply once the timeout passes.
  EXPECT_EQ(client.ReadAll(), "");
}

TEST(MetricsServerTest, IdleConnectionsBeyondTheLimitDoNotStarveOthers) {
  MetricsServerOptions options;
  options.max_connections = 2;
  options.io_timeout = absl::Milliseconds(300);
  std::unique_ptr<MetricsServer> server = StartOrDie(options);
  TestConnection idle1(server->address());
  TestConnection idle2(server->address());
  TestConnection client(server->address());  // waits in the accept queue
  client.Send("GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_THAT(client.ReadAll(), StartsWith("HTTP/1.1 200 OK"));
}

TEST(MetricsServerTest, ClientsThatVanishDoNotStopTheServer) {
  std::atomic<int> renders{0};
  std::unique_ptr<MetricsServer> server = StartOrDie({}, [&] {
    ++renders;
    return std::string(1 << 20, 'x');  // larger than the socket buffers
  });
  {
    TestConnection gone(server->address());
    gone.Send("GET /metrics HTTP/1.1\r\n\r\n");
  }  // closed without reading the reply
  { TestConnection nothing(server->address()); }
  TestConnection client(server->address());
  client.Send("GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(client.ReadAll().size() > (1 << 20), true);
}

TEST(MetricsServerTest, RejectsBadAddresses) {
  for (const std::string& listen :
       std::vector<std::string>{"", "nohostport", ":9000", "127.0.0.1:", "127.0.0.1:99999",
                                "127.0.0.1:12ab", "[::1:9000"}) {
    EXPECT_EQ(MetricsServer::Start(listen, Page).status().code(),
              absl::StatusCode::kInvalidArgument)
        << listen;
  }
}

TEST(MetricsServerTest, PortInUseIsUnavailable) {
  std::unique_ptr<MetricsServer> first = StartOrDie();
  EXPECT_EQ(MetricsServer::Start(first->address(), Page).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(MetricsServerTest, DestructionClosesThePort) {
  std::unique_ptr<MetricsServer> server = StartOrDie();
  const std::string address = server->address();
  TestConnection open_connection(address);
  server.reset();
  EXPECT_EQ(open_connection.ReadAll(), "");
  TestConnection refused(address);
  EXPECT_FALSE(refused.connected());
}

}  // namespace
}  // namespace txcoord
