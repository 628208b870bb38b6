// TLS for txcoord's gRPC ports: the PEM files a process is given
// (--tls_cert, --tls_key, --tls_ca), checked when loaded so that a wrong
// path or a key that does not match its certificate stops the start with a
// message naming the file, and the gRPC credentials built from them.
//
//   absl::StatusOr<TlsConfig> tls = LoadTlsConfig({cert, key, ca});
//   absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server = ServerCredentials(*tls);
//   absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> client = ChannelCredentials(*tls);
#ifndef TXCOORD_RPC_TLS_H_
#define TXCOORD_RPC_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace txcoord {

// Paths as given on the command line; empty means "not given".
struct TlsFiles {
  std::string cert;  // PEM certificate (chain) this process presents
  std::string key;   // PEM private key of `cert`
  std::string ca;    // PEM CA certificate(s) that verify the peer
};

// The contents of TlsFiles, checked: every certificate parses, the key
// parses and matches the leaf certificate, and the leaf certificate is
// within its validity period.
struct TlsConfig {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;

  bool has_identity() const { return !cert_pem.empty(); }
  bool has_ca() const { return !ca_pem.empty(); }
  // Whether any TLS setting was given: the process then talks TLS only.
  bool enabled() const { return has_identity() || has_ca(); }
};

// Reads and checks the files. No file given: an empty (disabled) config.
// Errors are INVALID_ARGUMENT naming the flag and the file: a cert without
// a key (or the reverse), an unreadable file, a file with no PEM
// certificate or key in it, a key that does not belong to the certificate,
// an expired or not yet valid certificate.
absl::StatusOr<TlsConfig> LoadTlsConfig(const TlsFiles& files);

// Credentials for a listening port. nullptr (insecure) when TLS is not
// enabled. Needs an identity (cert and key) when enabled: a server cannot
// do TLS without one. With a CA, clients must present a certificate that
// the CA verifies (mutual TLS); without one, client certificates are not
// asked for.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(const TlsConfig& config);

// Credentials for outgoing channels. nullptr (insecure) when TLS is not
// enabled. The server is verified with the CA, or with the system's roots
// when none was given; the identity (cert and key), if any, is presented
// to servers that ask for one.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsConfig& config);

// As ServerCredentials and ChannelCredentials, for daemons, whose
// certificates are rotated while they run: gRPC re-reads `files` every
// `refresh` (whole seconds, at least 1) and uses what it read for new
// connections; connections already open keep theirs. A file replaced by
// one that does not parse, or a key that does not match its certificate,
// is logged by gRPC and the previous pair stays in use. `config` is what
// LoadTlsConfig(files) returned: it says which files there are.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ReloadingServerCredentials(
    const TlsFiles& files, const TlsConfig& config, absl::Duration refresh);
std::shared_ptr<grpc::ChannelCredentials> ReloadingChannelCredentials(const TlsFiles& files,
                                                                      const TlsConfig& config,
                                                                      absl::Duration refresh);

}  // namespace txcoord

#endif  // TXCOORD_RPC_TLS_H_
