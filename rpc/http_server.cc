#include "rpc/http_server.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <deque>
#include <limits>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/logging.h"
#include "common/utf8.h"
#include "httplib.h"

namespace txcoord {
namespace {

// A worker pool whose queue is bounded: when it is full, enqueue blocks, so
// the accept loop stops accepting and further connections wait in the
// kernel's backlog instead of in memory.
class BoundedPool final : public httplib::TaskQueue {
 public:
  explicit BoundedPool(int threads) : capacity_(static_cast<size_t>(threads)) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &BoundedPool::HasSpaceOrStopping));
    if (stopping_) return;
    queue_.push_back(std::move(fn));
  }

  void shutdown() override {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ && workers_.empty()) return;
      stopping_ = true;
    }
    for (std::thread& w : workers_) w.join();
    workers_.clear();
  }

 private:
  bool HasSpaceOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || queue_.size() < capacity_;
  }
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &BoundedPool::HasWorkOrStopping));
        if (queue_.empty()) return;  // stopping, and nothing left to serve
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Filled by the constructor and emptied by shutdown(), the only callers
  // that touch it; the workers never do.
  std::vector<std::thread> workers_;
};

std::string CodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

void SendJson(httplib::Response& res, int http_code, const nlohmann::json& body) {
  res.status = http_code;
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

void SendError(httplib::Response& res, const absl::Status& status) {
  SendJson(res, HttpCodeOf(status.code()),
           {{"code", CodeName(status.code())}, {"message", std::string(status.message())}});
}

PeerIdentity IdentityOf(const httplib::Request& req) {
  PeerIdentity peer;
  if (req.ssl == nullptr) return peer;
  X509* cert = SSL_get1_peer_certificate(req.ssl);
  if (cert == nullptr) return peer;
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) > 0) {
    peer.common_name = cn;
  }
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type != GEN_DNS) continue;
      const unsigned char* data = ASN1_STRING_get0_data(name->d.dNSName);
      peer.dns_names.emplace_back(reinterpret_cast<const char*>(data),
                                  static_cast<size_t>(ASN1_STRING_length(name->d.dNSName)));
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  return peer;
}

// "/v1/transactions/{txid}" against "/v1/transactions/c1.2.3": true and
// {"txid": "c1.2.3"}. A capture matches one non-empty segment.
bool Match(const std::vector<std::string>& pattern, const std::vector<std::string>& path,
           std::map<std::string, std::string>* params) {
  if (pattern.size() != path.size()) return false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& p = pattern[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      if (path[i].empty()) return false;
      (*params)[p.substr(1, p.size() - 2)] = path[i];
    } else if (p != path[i]) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> Segments(absl::string_view path) { return absl::StrSplit(path, '/'); }

}  // namespace

int HttpCodeOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kOutOfRange:
      return 410;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

class HttpServer::Impl {
 public:
  Impl(std::string name, std::vector<HttpRoute> routes, HttpServerOptions options)
      : name_(std::move(name)), options_(std::move(options)) {
    for (HttpRoute& r : routes) routes_.push_back({Segments(r.pattern), std::move(r)});
  }

  ~Impl() { Stop(); }

  absl::Status Start(const std::string& listen) {
    const bool tls = !options_.tls.cert.empty();
    if (!tls && !options_.tls.ca.empty()) {
      return absl::InvalidArgumentError("HTTPS needs --tls_cert and --tls_key, not only --tls_ca");
    }
    if (tls) {
      const TlsFiles files = options_.tls;
      server_ = std::make_unique<httplib::SSLServer>([files](SSL_CTX& ctx) {
        SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_chain_file(&ctx, files.cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(&ctx, files.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(&ctx) != 1) {
          return false;
        }
        if (!files.ca.empty()) {
          if (SSL_CTX_load_verify_locations(&ctx, files.ca.c_str(), nullptr) != 1) return false;
          SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        }
        return true;
      });
      if (!server_->is_valid()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot set up HTTPS with --tls_cert=", files.cert, " --tls_key=", files.key,
            files.ca.empty() ? "" : absl::StrCat(" --tls_ca=", files.ca)));
      }
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    tls_ = tls;
    const int threads = std::max(1, options_.max_connections);
    server_->new_task_queue = [threads] { return new BoundedPool(threads); };
    const auto seconds = [](absl::Duration d) {
      return std::max<time_t>(1, static_cast<time_t>(absl::ToInt64Seconds(d)));
    };
    server_->set_read_timeout(seconds(options_.read_timeout));
    server_->set_write_timeout(seconds(options_.write_timeout));
    server_->set_keep_alive_timeout(seconds(options_.idle_timeout));
    // A keep-alive connection is bounded by its idle timeout, not by a
    // request count: closing it after N requests made clients reconnect in
    // bursts, and a dropped SYN costs a second (p99 1.1 s at 16 clients).
    server_->set_keep_alive_max_count(std::numeric_limits<size_t>::max());
    // Answers are one small write: waiting for the client's delayed ACK
    // (Nagle) would add ~40 ms to every request.
    server_->set_tcp_nodelay(true);
    server_->set_payload_max_length(options_.max_body_bytes);
    // What httplib answers before any route (a body over the limit, a
    // request it cannot parse) gets a JSON error body too.
    server_->set_error_handler(
        [limit = options_.max_body_bytes](const httplib::Request&, httplib::Response& res) {
          if (!res.body.empty()) return;
          const int code = res.status;
          std::string message;
          absl::StatusCode status = absl::StatusCode::kInvalidArgument;
          if (code == 413) {
            status = absl::StatusCode::kResourceExhausted;
            message = absl::StrCat("the request body is over the limit of ", limit, " bytes");
          } else if (code == 414 || code == 431) {
            status = absl::StatusCode::kResourceExhausted;
            message = "the request line or headers are too long";
          } else {
            // Also what a body cut short by the read timeout gets.
            message = absl::StrCat("malformed or incomplete HTTP request (HTTP ", code,
                                   "): a POST needs a Content-Length (even 0) and its whole body "
                                   "within the read timeout");
          }
          const int keep = code;
          SendJson(res, keep, {{"code", CodeName(status)}, {"message", message}});
        });
    const auto serve = [this](const httplib::Request& req, httplib::Response& res) {
      Serve(req, res);
    };
    server_->Get(".*", serve);
    server_->Post(".*", serve);
    server_->Put(".*", serve);
    server_->Delete(".*", serve);
    server_->Patch(".*", serve);
    server_->Options(".*", serve);

    std::pair<std::string, std::string> host_port = absl::StrSplit(listen, absl::MaxSplits(':', 1));
    std::string host = host_port.first;
    if (absl::StartsWith(host, "[")) {  // [::1]:8080
      const size_t close = listen.find(']');
      if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
        return absl::InvalidArgumentError(absl::StrCat("bad --http_listen \"", listen, "\""));
      }
      host = listen.substr(1, close - 1);
      host_port.second = listen.substr(close + 2);
    }
    int port = 0;
    if (!absl::SimpleAtoi(host_port.second, &port) || port < 0 || port > 65535 || host.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --http_listen \"", listen, "\": want HOST:PORT"));
    }
    if (port == 0) {
      port = server_->bind_to_any_port(host);
      if (port < 0) port = 0;
    } else if (!server_->bind_to_port(host, port)) {
      port = 0;
    }
    if (port == 0) {
      return absl::UnavailableError(absl::StrCat("cannot bind HTTP on ", listen));
    }
    address_ =
        absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":", port);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    return absl::OkStatus();
  }

  void Stop() {
    if (server_ == nullptr) return;
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  const std::string& address() const { return address_; }
  bool tls() const { return tls_; }

 private:
  struct Compiled {
    std::vector<std::string> segments;
    HttpRoute route;
  };

  void Serve(const httplib::Request& req, httplib::Response& res) {
    if (req.method == "GET") {
      auto asset = options_.assets.find(req.path);
      if (asset != options_.assets.end()) {
        res.status = 200;
        res.set_header("Cache-Control", "no-store");
        res.set_header("X-Content-Type-Options", "nosniff");
        res.set_header("X-Frame-Options", "DENY");
        res.set_header("Content-Security-Policy",
                       "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        res.set_content(asset->second.body, asset->second.content_type.c_str());
        return;
      }
    }
    const std::vector<std::string> path = Segments(req.path);
    const Compiled* found = nullptr;
    bool other_method = false;
    HttpRequest request;
    for (const Compiled& c : routes_) {
      std::map<std::string, std::string> params;
      if (!Match(c.segments, path, &params)) continue;
      if (c.route.method != req.method) {
        other_method = true;
        continue;
      }
      found = &c;
      request.params = std::move(params);
      break;
    }
    if (found == nullptr) {
      if (other_method) {
        std::string allow;
        for (const Compiled& c : routes_) {
          std::map<std::string, std::string> ignored;
          if (Match(c.segments, path, &ignored) && !absl::StrContains(allow, c.route.method)) {
            absl::StrAppend(&allow, allow.empty() ? "" : ", ", c.route.method);
          }
        }
        res.set_header("Allow", allow);
        SendError(res, absl::Status(absl::StatusCode::kUnimplemented,
                                    absl::StrCat(req.method, " is not allowed on ", req.path)));
        res.status = 405;
        return;
      }
      SendError(res, absl::NotFoundError(absl::StrCat("no endpoint ", req.method, " ", req.path,
                                                      " (see docs/http.md)")));
      return;
    }
    const HttpRoute& route = found->route;
    request.method = req.method;
    request.path = req.path;
    for (const auto& [key, value] : req.params) request.query[key] = value;
    request.peer = IdentityOf(req);

    if (absl::Status allowed = CheckAccess(route, req, request.peer); !allowed.ok()) {
      TXLOG(WARNING) << name_ << " http: refused " << route.method << " " << req.path << " from "
                     << req.remote_addr << " (" << request.peer.ToString()
                     << "): " << allowed.message();
      SendError(res, allowed);
      return;
    }
    if (req.method == "POST") {
      if (absl::Status body = ParseBody(req, &request.body); !body.ok()) {
        SendError(res, body);
        if (absl::StartsWith(body.message(), "Content-Type")) res.status = 415;
        return;
      }
    } else {
      request.body = nlohmann::json::object();
    }
    if (route.redirect) {
      if (std::string base = route.redirect(request); !base.empty()) {
        std::string location = base + req.path;
        if (!req.params.empty()) {
          // httplib keeps the decoded query only: the target re-parses it.
          std::string query;
          for (const auto& [name, value] : req.params) {
            absl::StrAppend(&query, query.empty() ? "?" : "&",
                            httplib::detail::encode_query_param(name), "=",
                            httplib::detail::encode_query_param(value));
          }
          location += query;
        }
        res.set_header("Location", location);
        SendJson(res, 307,
                 {{"code", "MOVED"},
                  {"message", absl::StrCat("answered by ", base, ": repeat the request there")},
                  {"location", location}});
        return;
      }
    }
    absl::StatusOr<nlohmann::json> answer;
    try {
      answer = route.handler(request);
    } catch (const nlohmann::json::exception& e) {
      answer = absl::InvalidArgumentError(absl::StrCat("bad request body: ", e.what()));
    }
    if (!answer.ok()) {
      SendError(res, answer.status());
      return;
    }
    SendJson(res, 200, *answer);
  }

  // A browser adds Origin to cross-site requests: a page elsewhere must not
  // drive an operator's console (its POSTs also need a JSON body, which a
  // cross-site form cannot send without a preflight that is never granted).
  absl::Status CheckOrigin(const httplib::Request& req) const {
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty()) {
      const std::string host = req.get_header_value("Host");
      const std::string same = absl::StrCat(tls_ ? "https://" : "http://", host);
      if (origin != same) {
        return absl::PermissionDeniedError(
            absl::StrCat("cross-site request to an admin endpoint refused (Origin ", origin,
                         ", expected ", same, ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckAccess(const HttpRoute& route, const httplib::Request& req,
                           const PeerIdentity& peer) const {
    if (route.access == HttpAccess::kAdmin) {
      if (absl::Status same_site = CheckOrigin(req); !same_site.ok()) return same_site;
    }
    if (options_.access_policy != nullptr) {
      Caller caller;
      caller.identity = peer;
      caller.locality =
          IsLoopbackAddress(req.remote_addr) ? Locality::kLoopback : Locality::kRemote;
      return options_.access_policy->Admit(route.grpc_method, caller);
    }
    if (route.access != HttpAccess::kAdmin || (!tls_ && IsLoopbackAddress(req.remote_addr))) {
      return absl::OkStatus();
    }
    return absl::PermissionDeniedError(absl::StrCat(
        route.grpc_method, " refused to ", req.remote_addr,
        ": admin routes without an access policy are served to loopback over plain HTTP only"));
  }

  static absl::Status ParseBody(const httplib::Request& req, nlohmann::json* body) {
    if (req.body.empty()) {
      *body = nlohmann::json::object();
      return absl::OkStatus();
    }
    const std::string type = absl::AsciiStrToLower(req.get_header_value("Content-Type"));
    if (!absl::StartsWith(type, "application/json")) {
      return absl::InvalidArgumentError(
          absl::StrCat("Content-Type must be application/json, not \"",
                       req.get_header_value("Content-Type"), "\""));
    }
    if (absl::Status utf8 = CheckUtf8("the request body", req.body); !utf8.ok()) return utf8;
    *body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body->is_discarded()) {
      return absl::InvalidArgumentError("the request body is not valid JSON");
    }
    if (!body->is_object()) {
      return absl::InvalidArgumentError("the request body must be a JSON object");
    }
    return absl::OkStatus();
  }

  const std::string name_;
  const HttpServerOptions options_;
  std::vector<Compiled> routes_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
  bool tls_ = false;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& name,
                                                              const std::string& listen,
                                                              std::vector<HttpRoute> routes,
                                                              HttpServerOptions options) {
  for (const HttpRoute& r : routes) {
    if (r.pattern.empty() || r.pattern[0] != '/' || (r.method != "GET" && r.method != "POST") ||
        !r.handler) {
      return absl::InvalidArgumentError(absl::StrCat("bad HTTP route ", r.method, " ", r.pattern));
    }
  }
  auto impl = std::make_unique<Impl>(name, std::move(routes), std::move(options));
  if (absl::Status started = impl->Start(listen); !started.ok()) return started;
  std::printf("%s http listening on %s\n", name.c_str(), impl->address().c_str());
  std::fflush(stdout);
  TXLOG(INFO) << name << " serving HTTP" << (impl->tls() ? "S" : "") << " on " << impl->address();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }
const std::string& HttpServer::address() const { return impl_->address(); }
bool HttpServer::tls() const { return impl_->tls(); }
void HttpServer::Stop() { impl_->Stop(); }

// --- JsonFields -------------------------------------------------------------

JsonFields::JsonFields(const nlohmann::json& object, std::string where)
    : object_(object), where_(std::move(where)) {}

std::string JsonFields::Where(absl::string_view name) const {
  return where_.empty() ? std::string(name) : absl::StrCat(where_, ".", name);
}

const nlohmann::json* JsonFields::Get(const char* name) {
  read_.emplace_back(name);
  if (!object_.is_object()) return nullptr;
  auto it = object_.find(name);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status JsonFields::String(const char* name, std::string* out) {
  const nlohmann::json* v = Get(name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(name), " must be a string"));
  }
  *out = v->get<std::string>();
  return absl::OkStatus();
}

absl::Status JsonFields::Text(const char* name, std::string* out) {
  if (absl::Status s = String(name, out); !s.ok()) return s;
  return CheckUtf8(Where(name), *out);
}

absl::Status JsonFields::Bool(const char* name, bool* out) {
  const nlohmann::json* v = Get(name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(name), " must be true or false"));
  }
  *out = v->get<bool>();
  return absl::OkStatus();
}

absl::Status JsonFields::Uint32(const char* name, uint32_t* out) {
  const nlohmann::json* v = Get(name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(name), " must be an integer from 0 to 4294967295"));
  }
  *out = static_cast<uint32_t>(v->get<int64_t>());
  return absl::OkStatus();
}

absl::Status JsonFields::Int64(const char* name, int64_t* out) {
  const nlohmann::json* v = Get(name);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_integer() || (v->is_number_unsigned() && v->get<uint64_t>() > INT64_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(Where(name), " must be a 64-bit integer"));
  }
  *out = v->get<int64_t>();
  return absl::OkStatus();
}

absl::Status JsonFields::Finish() const {
  if (!object_.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where_.empty() ? "the body" : where_, " must be a JSON object"));
  }
  for (const auto& [key, value] : object_.items()) {
    if (std::find(read_.begin(), read_.end(), key) == read_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown field \"", Where(key), "\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace txcoord
