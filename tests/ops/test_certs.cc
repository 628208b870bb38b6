#include "tests/ops/test_certs.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "harness/spawn.h"

namespace txcoord::testing {
namespace {

constexpr char kConfig[] = R"([req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[node_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[dns_client_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:ops.example.com
)";

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs openssl with `args` in `dir`, its output appended to dir/openssl.log.
absl::Status OpenSsl(const std::string& dir, std::vector<std::string> args) {
  const std::string log = dir + "/openssl.log";
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", log));
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  args.insert(args.begin(), "/usr/bin/openssl");
  absl::StatusOr<pid_t> pid = SpawnChild(args, null_fd, fd, fd);
  close(fd);
  close(null_fd);
  if (!pid.ok()) return pid.status();
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(args, " "), " failed:\n", ReadText(log)));
  }
  return absl::OkStatus();
}

// A key and a certificate for `cn` with the extensions of `section`,
// signed by `ca` (its .crt and .key).
absl::StatusOr<TlsFiles> Issue(const std::string& dir, const std::string& name,
                               const std::string& cn, const std::string& section,
                               const std::string& ca, int serial) {
  const std::string base = absl::StrCat(dir, "/", name);
  const std::string config = dir + "/openssl.cnf";
  if (absl::Status s = OpenSsl(dir, {"req", "-new", "-config", config, "-newkey", "ec", "-pkeyopt",
                                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                                     base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn});
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          OpenSsl(dir, {"x509", "-req", "-in", base + ".csr", "-CA", ca + ".crt", "-CAkey",
                        ca + ".key", "-set_serial", absl::StrCat(serial), "-days", "2", "-extfile",
                        config, "-extensions", section, "-out", base + ".crt"});
      !s.ok()) {
    return s;
  }
  return TlsFiles{base + ".crt", base + ".key", dir + "/ca.crt"};
}

absl::Status MakeCa(const std::string& dir, const std::string& name) {
  return OpenSsl(
      dir, {"req", "-x509", "-config", dir + "/openssl.cnf", "-extensions", "ca_ext", "-newkey",
            "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
            absl::StrCat(dir, "/", name, ".key"), "-out", absl::StrCat(dir, "/", name, ".crt"),
            "-days", "2", "-subj", "/CN=txcoord test " + name});
}

}  // namespace

std::vector<std::string> TestCerts::DaemonFlags(const std::string& admin_allow) const {
  return {"--tls_cert=" + node.cert, "--tls_key=" + node.key, "--tls_ca=" + ca,
          "--admin_allow=" + admin_allow};
}

std::vector<std::string> TestCerts::AgentFlags(const std::string& admin_allow) const {
  std::vector<std::string> flags = DaemonFlags(admin_allow);
  flags.push_back("--coordinator_identity=txcoord-node");
  return flags;
}

absl::StatusOr<TestCerts> GenerateTestCerts(const std::string& dir) {
  {
    std::ofstream config(dir + "/openssl.cnf");
    config << kConfig;
    if (!config) return absl::InternalError(absl::StrCat("cannot write ", dir, "/openssl.cnf"));
  }
  if (absl::Status s = MakeCa(dir, "ca"); !s.ok()) return s;
  if (absl::Status s = MakeCa(dir, "rogue-ca"); !s.ok()) return s;
  const std::string ca = dir + "/ca";
  TestCerts certs;
  certs.ca = ca + ".crt";
  struct Spec {
    TlsFiles* out;
    const char* name;
    const char* cn;
    const char* section;
    std::string issuer;
  };
  const Spec specs[] = {
      {&certs.node, "node", "txcoord-node", "node_ext", ca},
      {&certs.admin, "operator", "operator", "client_ext", ca},
      {&certs.service, "service", "orders-service", "client_ext", ca},
      {&certs.intruder, "intruder", "intruder", "client_ext", ca},
      {&certs.dns_client, "dns-client", "dns-client", "dns_client_ext", ca},
      {&certs.rogue, "rogue", "operator", "client_ext", dir + "/rogue-ca"},
      {&certs.coordinator, "coordinator", "txcoord", "node_ext", ca},
      {&certs.agent_orders, "agent-orders", "agent-orders", "node_ext", ca},
      {&certs.agent_payments, "agent-payments", "agent-payments", "node_ext", ca},
  };
  int serial = 1000;
  for (const Spec& spec : specs) {
    absl::StatusOr<TlsFiles> files =
        Issue(dir, spec.name, spec.cn, spec.section, spec.issuer, ++serial);
    if (!files.ok()) return files.status();
    *spec.out = *std::move(files);
  }
  return certs;
}

absl::Status RotateCertificate(const std::string& dir, const TlsFiles& files, const std::string& cn,
                               int serial) {
  const std::string name = absl::StrCat("rotated-", serial);
  absl::StatusOr<TlsFiles> fresh = Issue(dir, name, cn, "node_ext", dir + "/ca", serial);
  if (!fresh.ok()) return fresh.status();
  if (std::rename(fresh->key.c_str(), files.key.c_str()) != 0 ||
      std::rename(fresh->cert.c_str(), files.cert.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename over ", files.cert));
  }
  return absl::OkStatus();
}

}  // namespace txcoord::testing
