#include "rpc/tls_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate (chain) this process presents: as the server on its gRPC port and as "
          "the client on the calls it makes. Needs --tls_key. Given any --tls_* flag, every "
          "gRPC port and call of this process uses TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key (unencrypted) of --tls_cert.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificate(s) that verify peers. A daemon given it requires every client to "
          "present a certificate this CA signed (mutual TLS); calls this process makes verify "
          "the server with it (default: the system's roots).");

namespace txcoord {

TlsFiles TlsFilesFromFlags() {
  return TlsFiles{absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                  absl::GetFlag(FLAGS_tls_ca)};
}

}  // namespace txcoord
