// A cluster fixture whose daemons also serve HTTP/JSON (--http_listen), and
// a small client for it: one request per connection, the answer's code and
// parsed JSON body.
#ifndef TXCOORD_TESTS_INTEGRATION_HTTP_FIXTURE_H_
#define TXCOORD_TESTS_INTEGRATION_HTTP_FIXTURE_H_

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster_fixture.h"

namespace txcoord::testing {

struct HttpReply {
  int status = 0;       // 0: no answer (the connection failed)
  nlohmann::json body;  // null unless the answer was JSON
  std::string raw;
};

inline std::ostream& operator<<(std::ostream& os, const HttpReply& r) {
  return os << "HTTP " << r.status << " " << r.raw;
}

// `address` is "HOST:PORT". GET when `body` is null; else a POST of `body`
// as it is, with `content_type`.
inline HttpReply HttpRequestRaw(const std::string& address, const std::string& path,
                                const std::string* body,
                                const std::string& content_type = "application/json") {
  std::pair<std::string, std::string> host_port = absl::StrSplit(address, ':');
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(host_port.second, &port)) << address;
  httplib::Client client(host_port.first, port);
  client.set_connection_timeout(10);
  client.set_read_timeout(90);
  httplib::Result result = body == nullptr ? client.Get(path.c_str())
                                           : client.Post(path.c_str(), *body, content_type.c_str());
  HttpReply reply;
  if (!result) return reply;
  reply.status = result->status;
  reply.raw = result->body;
  reply.body = nlohmann::json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (reply.body.is_discarded()) reply.body = nullptr;
  return reply;
}

inline HttpReply HttpGet(const std::string& address, const std::string& path) {
  return HttpRequestRaw(address, path, nullptr);
}

inline HttpReply HttpPost(const std::string& address, const std::string& path,
                          const nlohmann::json& body = nlohmann::json::object()) {
  const std::string text = body.dump();
  return HttpRequestRaw(address, path, &text);
}

class HttpClusterFixture : public ClusterFixture {
 protected:
  ClusterOptions Options() override {
    ClusterOptions options = ClusterFixture::Options();
    options.http = true;
    return options;
  }

  const std::string& coordinator_http() const { return cluster_->coordinator_http_address(); }
  const std::string& agent_http(int i) const { return cluster_->agent_http_address(i); }
};

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_INTEGRATION_HTTP_FIXTURE_H_
