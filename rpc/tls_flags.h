// The TLS flags every txcoord binary takes (--tls_cert, --tls_key,
// --tls_ca), defined once so that txcoord, txagent and txctl spell and
// explain them the same way. Link txcoord_tls_flags to get them.
#ifndef TXCOORD_RPC_TLS_FLAGS_H_
#define TXCOORD_RPC_TLS_FLAGS_H_

#include "rpc/tls.h"

namespace txcoord {

// The paths given on the command line (after absl::ParseCommandLine).
TlsFiles TlsFilesFromFlags();

}  // namespace txcoord

#endif  // TXCOORD_RPC_TLS_FLAGS_H_
