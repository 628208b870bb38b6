// The HTTP/JSON side of both daemons: a small router over cpp-httplib with
// the limits and the security of their gRPC ports. Handlers take a parsed
// JSON body and answer a JSON object or an absl::Status, which becomes an
// HTTP code (HttpCodeOf) and an error body {"code": ..., "message": ...}.
// docs/http.md is the contract.
//
//   std::vector<HttpRoute> routes = {
//       {"POST", "/v1/transactions/{txid}/commit", HttpAccess::kData, CommitHandler},
//       {"GET", "/v1/admin/transactions", HttpAccess::kAdmin, ListHandler}};
//   absl::StatusOr<std::unique_ptr<HttpServer>> http =
//       HttpServer::Start("txcoord", "127.0.0.1:8080", routes, options);
#ifndef TXCOORD_RPC_HTTP_SERVER_H_
#define TXCOORD_RPC_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "rpc/access_policy.h"
#include "rpc/admin_auth.h"
#include "rpc/tls.h"

namespace txcoord {

// How a route is guarded besides the access policy of its gRPC method.
enum class HttpAccess {
  kData,   // only the policy
  kAdmin,  // also refused to cross-site browser requests (Origin)
};

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;  // the route's {captures}
  std::map<std::string, std::string> query;
  nlohmann::json body;  // an object; {} when the request had no body
  PeerIdentity peer;    // from the client certificate; empty without one
};

using HttpHandler = std::function<absl::StatusOr<nlohmann::json>(const HttpRequest&)>;
// Where a request belongs instead of here: "http://HOST:PORT" (or https)
// of the daemon that should answer it, or empty to answer it here. The
// server answers 307 Temporary Redirect to that base with the same path and
// query, so the client repeats the same method and body there.
using HttpRedirector = std::function<std::string(const HttpRequest&)>;

struct HttpRoute {
  std::string method;   // "GET" or "POST"
  std::string pattern;  // "/v1/transactions/{txid}": a {name} matches one path segment
  HttpAccess access = HttpAccess::kData;
  HttpHandler handler;
  // The gRPC method it mirrors ("/txcoord.v1.CoordinatorAdmin/ForceAbort"),
  // for the admin check's messages and logs.
  std::string grpc_method;
  // If set and it names another daemon, the request is redirected there.
  HttpRedirector redirect;
};

// A file served as it is (the console's page, script and style).
struct HttpAsset {
  std::string content_type;
  std::string body;
};

struct HttpServerOptions {
  // TLS as on the gRPC port: with a certificate, HTTPS only; with a CA,
  // clients must present a certificate it signed.
  TlsFiles tls;
  // Who may call each route, decided on its grpc_method exactly as the
  // gRPC port decides (the client certificate's identity, or loopback or
  // not without one). nullptr: admin routes are served to loopback peers
  // of a plaintext port only, data routes to everyone.
  std::shared_ptr<const AccessPolicy> access_policy;
  size_t max_body_bytes = 16 << 20;                 // 413 beyond
  absl::Duration read_timeout = absl::Seconds(10);  // a body that never finishes
  absl::Duration write_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(5);  // keep-alive
  // Connections served at once; more wait in a queue of the same size, then
  // in the kernel's accept backlog.
  int max_connections = 32;
  // GET paths served as files, e.g. "/ui" (the console).
  std::map<std::string, HttpAsset> assets;
};

// The HTTP code for a status: OK 200, INVALID_ARGUMENT 400,
// UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404, ABORTED and
// FAILED_PRECONDITION and ALREADY_EXISTS 409, OUT_OF_RANGE 410 (an expired
// outcome: Gone), RESOURCE_EXHAUSTED 429,
// CANCELLED 499, UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504,
// the rest 500.
int HttpCodeOf(absl::StatusCode code);

// Thread-safe; handlers run on the server's worker threads.
class HttpServer final {
 public:
  // Binds `listen` ("host:port"; port 0 picks one), starts serving and
  // prints "<name> http listening on <address>" on stdout. INVALID_ARGUMENT
  // for bad TLS files or a route pattern; UNAVAILABLE if it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& name,
                                                           const std::string& listen,
                                                           std::vector<HttpRoute> routes,
                                                           HttpServerOptions options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  const std::string& address() const;
  bool tls() const;
  // Stops accepting and waits for the requests in flight.
  void Stop();

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reads a request body's fields strictly: every field read is checked for
// its JSON type, and Finish() refuses any field left unread (a typo must not
// be silently ignored). Errors are INVALID_ARGUMENT naming the field.
class JsonFields final {
 public:
  explicit JsonFields(const nlohmann::json& object, std::string where = "");
  // Absent fields leave `out` as it is and return OK.
  absl::Status String(const char* name, std::string* out);
  // A string that must be valid UTF-8 (SQL, text).
  absl::Status Text(const char* name, std::string* out);
  absl::Status Bool(const char* name, bool* out);
  absl::Status Uint32(const char* name, uint32_t* out);
  absl::Status Int64(const char* name, int64_t* out);
  // The raw value of a field, or nullptr if absent.
  const nlohmann::json* Get(const char* name);
  // INVALID_ARGUMENT naming the first field never read.
  absl::Status Finish() const;
  std::string Where(absl::string_view name) const;

 private:
  const nlohmann::json& object_;
  std::string where_;
  std::vector<std::string> read_;
};

}  // namespace txcoord

#endif  // TXCOORD_RPC_HTTP_SERVER_H_
