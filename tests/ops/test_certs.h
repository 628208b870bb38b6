// Certificates for TLS tests, made at test time with the openssl CLI in a
// directory of the test's: a CA, a certificate every daemon uses (server
// and client, for 127.0.0.1 and localhost), client certificates for an
// allowed and a not-allowed operator, one with a DNS name, one that
// another CA signed, and one per daemon role.
//
//   absl::StatusOr<TestCerts> certs = GenerateTestCerts(dir.path());
//   cluster_options.coordinator_flags = certs->DaemonFlags("operator");
#ifndef TXCOORD_TESTS_OPS_TEST_CERTS_H_
#define TXCOORD_TESTS_OPS_TEST_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rpc/tls.h"

namespace txcoord::testing {

struct TestCerts {
  std::string ca;       // the CA certificate every daemon and client trusts
  TlsFiles node;        // CN=txcoord-node, SAN IP:127.0.0.1 DNS:localhost
  TlsFiles admin;       // CN=operator (client only)
  TlsFiles service;     // CN=orders-service (client only): a service on the data path
  TlsFiles intruder;    // CN=intruder (client only)
  TlsFiles dns_client;  // CN=dns-client, SAN DNS:ops.example.com (client only)
  TlsFiles rogue;       // CN=operator, but signed by a CA nobody trusts
  // One certificate per daemon role, each serving and calling (SAN
  // IP:127.0.0.1 DNS:localhost like `node`).
  TlsFiles coordinator;     // CN=txcoord
  TlsFiles agent_orders;    // CN=agent-orders
  TlsFiles agent_payments;  // CN=agent-payments

  // --tls_cert/--tls_key/--tls_ca of a daemon with the `node` certificate,
  // plus --admin_allow.
  std::vector<std::string> DaemonFlags(const std::string& admin_allow) const;
  // As DaemonFlags, for an agent: also --coordinator_identity=txcoord-node
  // (the coordinator has the `node` certificate too).
  std::vector<std::string> AgentFlags(const std::string& admin_allow) const;
};

// Generates everything in `dir` (which must exist). Each TlsFiles names its
// cert, key and `ca`. Errors quote openssl's output.
absl::StatusOr<TestCerts> GenerateTestCerts(const std::string& dir);

// Rotates `files` (a serving and calling certificate made by
// GenerateTestCerts in `dir`) as an operator would: a new key and a new
// certificate for `cn` with serial `serial`, written under new names, then
// renamed over the old ones (key first).
absl::Status RotateCertificate(const std::string& dir, const TlsFiles& files, const std::string& cn,
                               int serial);

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_OPS_TEST_CERTS_H_
