#include "harness/netns.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace txcoord::testing {

int Shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool CanMakeNetns(const std::string& tools) {
  if (::geteuid() != 0) return false;
  for (absl::string_view tool : absl::StrSplit(tools, ' ', absl::SkipEmpty())) {
    if (Shell(absl::StrCat("command -v ", tool, " >/dev/null")) != 0) return false;
  }
  return true;
}

std::unique_ptr<Netns> Netns::Make() {
  const std::string id = absl::StrCat(::getpid() % 100000);
  const std::string subnet = absl::StrCat("169.254.", 1 + ::getpid() % 250, ".");
  auto ns = std::unique_ptr<Netns>(
      new Netns("txh" + id, "txh" + id + "a", "txh" + id + "b", subnet + "1"));
  const std::string in = absl::StrCat("ip netns exec ", ns->name_, " ");
  const std::vector<std::string> steps = {
      absl::StrCat("ip netns add ", ns->name_),
      absl::StrCat("ip link add ", ns->host_if_, " type veth peer name ", ns->ns_if_),
      absl::StrCat("ip link set ", ns->ns_if_, " netns ", ns->name_),
      absl::StrCat("ip addr add ", subnet, "1/30 dev ", ns->host_if_),
      absl::StrCat("ip link set ", ns->host_if_, " up"),
      absl::StrCat(in, "ip addr add ", subnet, "2/30 dev ", ns->ns_if_),
      absl::StrCat(in, "ip link set ", ns->ns_if_, " up"),
      absl::StrCat(in, "ip link set lo up"),
  };
  for (const std::string& step : steps) {
    if (Shell(step + " 2>/dev/null") != 0) return nullptr;
  }
  return ns;
}

Netns::~Netns() {
  Shell(absl::StrCat("ip netns del ", name_, " 2>/dev/null"));
  Shell(absl::StrCat("ip link del ", host_if_, " 2>/dev/null"));
}

int Netns::Run(const std::string& command, std::string* output) const {
  FILE* out = ::popen(absl::StrCat("ip netns exec ", name_, " ", command).c_str(), "r");
  if (out == nullptr) return -1;
  std::string text;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), out)) > 0) text.append(buffer, n);
  const int status = ::pclose(out);
  if (output != nullptr) *output = std::move(text);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Netns::Curl(const std::string& method, const std::string& url) const {
  std::string code;
  Run(absl::StrCat("curl -s -m 10 -o /dev/null -w '%{http_code}' -X ", method,
                   method == "POST" ? " -H 'Content-Type: application/json' -d '{}'" : "", " '",
                   url, "'"),
      &code);
  return code;
}

}  // namespace txcoord::testing
