#include "rpc/tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"

namespace txcoord {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

// The oldest error OpenSSL queued (the most specific one), and an empty
// queue afterwards: gRPC uses OpenSSL on the same threads and must not
// trip over our leftovers.
std::string TakeOpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no details";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

absl::Status Invalid(const char* flag, const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": ", what));
}

absl::StatusOr<std::string> ReadFile(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Invalid(flag, path, absl::StrCat("cannot read: ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Invalid(flag, path, "read error");
  // PEM files are small; anything larger is not what the flag names.
  if (text.str().size() > (1 << 20)) return Invalid(flag, path, "over 1 MiB: not a PEM file");
  return text.str();
}

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in `pem`, in order.
absl::StatusOr<std::vector<X509Ptr>> ParseCertificates(const char* flag, const std::string& path,
                                                       const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  // Reading stops with "no start line" at the end of the input: expected.
  ERR_clear_error();
  if (certs.empty()) return Invalid(flag, path, "no PEM certificate in it");
  return certs;
}

// A passphrase prompt on the daemon's terminal would hang its start.
int RefusePassphrase(char*, int, int, void*) { return -1; }

absl::Status CheckValidity(const std::string& path, X509* cert) {
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
    return Invalid("--tls_cert", path, "certificate is not valid yet (check the clock)");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
    return Invalid("--tls_cert", path, "certificate has expired");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TlsConfig> LoadTlsConfig(const TlsFiles& files) {
  TlsConfig config;
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError(
        files.cert.empty() ? "--tls_key is given without --tls_cert: give both or neither"
                           : "--tls_cert is given without --tls_key: give both or neither");
  }
  if (!files.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadFile("--tls_cert", files.cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::vector<X509Ptr>> chain = ParseCertificates("--tls_cert", files.cert, *cert);
    if (!chain.ok()) return chain.status();
    if (absl::Status valid = CheckValidity(files.cert, chain->front().get()); !valid.ok()) {
      return valid;
    }
    absl::StatusOr<std::string> key = ReadFile("--tls_key", files.key);
    if (!key.ok()) return key.status();
    BioPtr bio = MemoryBio(*key);
    KeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, RefusePassphrase, nullptr));
    if (pkey == nullptr) {
      return Invalid("--tls_key", files.key,
                     absl::StrCat("not an unencrypted PEM private key (", TakeOpenSslError(), ")"));
    }
    if (X509_check_private_key(chain->front().get(), pkey.get()) != 1) {
      ERR_clear_error();
      return Invalid("--tls_key", files.key,
                     absl::StrCat("does not belong to the certificate in ", files.cert));
    }
    config.cert_pem = *std::move(cert);
    config.key_pem = *std::move(key);
  }
  if (!files.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadFile("--tls_ca", files.ca);
    if (!ca.ok()) return ca.status();
    absl::StatusOr<std::vector<X509Ptr>> certs = ParseCertificates("--tls_ca", files.ca, *ca);
    if (!certs.ok()) return certs.status();
    config.ca_pem = *std::move(ca);
  }
  return config;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsConfig& config) {
  if (!config.enabled()) return nullptr;
  if (!config.has_identity()) {
    return absl::InvalidArgumentError(
        "--tls_ca is given without --tls_cert and --tls_key: a TLS server needs its own "
        "certificate and key");
  }
  grpc::SslServerCredentialsOptions options(
      config.has_ca() ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                      : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_root_certs = config.ca_pem;
  options.pem_key_cert_pairs.push_back({config.key_pem, config.cert_pem});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsConfig& config) {
  if (!config.enabled()) return nullptr;
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = config.ca_pem;  // empty: gRPC's default roots
  options.pem_private_key = config.key_pem;
  options.pem_cert_chain = config.cert_pem;
  return grpc::SslCredentials(options);
}

namespace {

unsigned int RefreshSeconds(absl::Duration refresh) {
  return static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(refresh)));
}

// One watcher of the files: its identity pair and its roots.
std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> Watch(const TlsFiles& files,
                                                                          const TlsConfig& config,
                                                                          absl::Duration refresh) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      config.has_identity() ? files.key : "", config.has_identity() ? files.cert : "",
      config.has_ca() ? files.ca : "", RefreshSeconds(refresh));
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ReloadingServerCredentials(
    const TlsFiles& files, const TlsConfig& config, absl::Duration refresh) {
  if (!config.enabled()) return nullptr;
  if (!config.has_identity()) return ServerCredentials(config);  // the same refusal
  grpc::experimental::TlsServerCredentialsOptions options(Watch(files, config, refresh));
  options.watch_identity_key_cert_pairs();
  if (config.has_ca()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> ReloadingChannelCredentials(const TlsFiles& files,
                                                                      const TlsConfig& config,
                                                                      absl::Duration refresh) {
  if (!config.enabled()) return nullptr;
  grpc::experimental::TlsChannelCredentialsOptions options;
  if (config.has_identity() || config.has_ca()) {
    options.set_certificate_provider(Watch(files, config, refresh));
  }
  if (config.has_identity()) options.watch_identity_key_cert_pairs();
  // Without a CA, gRPC's default roots verify the server, as in
  // ChannelCredentials.
  if (config.has_ca()) options.watch_root_certs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace txcoord
