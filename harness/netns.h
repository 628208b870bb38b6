// A network namespace joined to this one by a veth pair, for tests of what
// a daemon serves to a peer that is not on loopback: this side 169.254.N.1,
// the namespace's side 169.254.N.2 (link-local: nothing outside this
// machine is ever addressed). Needs root and ip (iproute2).
//
//   std::unique_ptr<Netns> ns = Netns::Make();   // nullptr if it cannot
//   ns->Run("curl http://" + ns->host_ip() + ":8080/...");
#ifndef TXCOORD_HARNESS_NETNS_H_
#define TXCOORD_HARNESS_NETNS_H_

#include <memory>
#include <string>

namespace txcoord::testing {

// Runs `command` with /bin/sh and returns its exit status (-1 if it could
// not run or was killed).
int Shell(const std::string& command);

// True if this process may make namespaces (root) and `tools` (a
// space-separated list, e.g. "ip curl") are on PATH.
bool CanMakeNetns(const std::string& tools);

class Netns final {
 public:
  // N comes from the process id, so that tests running at once do not
  // share a subnet. nullptr if a step fails (each is undone at destruction).
  static std::unique_ptr<Netns> Make();
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  // This side's address, as the namespace reaches it.
  const std::string& host_ip() const { return host_ip_; }
  // `command` run inside the namespace: its exit status, its stdout in
  // `output` (if not nullptr).
  int Run(const std::string& command, std::string* output = nullptr) const;
  // The HTTP status of `method url` sent from inside the namespace with
  // curl ("000" if no answer).
  std::string Curl(const std::string& method, const std::string& url) const;

 private:
  Netns(std::string name, std::string host_if, std::string ns_if, std::string host_ip)
      : name_(std::move(name)),
        host_if_(std::move(host_if)),
        ns_if_(std::move(ns_if)),
        host_ip_(std::move(host_ip)) {}
  const std::string name_, host_if_, ns_if_, host_ip_;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_NETNS_H_
