#include "cluster/etcd.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/txid.h"

namespace txcoord::cluster {

absl::StatusOr<std::vector<std::string>> ParseRegistryUrl(const std::string& url) {
  constexpr absl::string_view kScheme = "etcd://";
  constexpr absl::string_view kForm = "etcd://HOST:PORT[,HOST:PORT...]";
  if (url.empty())
    return absl::InvalidArgumentError(absl::StrCat("registry URL is empty; give ", kForm));
  if (!absl::StartsWith(url, kScheme)) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry URL \"", url, "\" does not start with etcd://; give ", kForm));
  }
  const absl::string_view list = absl::string_view(url).substr(kScheme.size());
  if (list.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("registry URL \"", url, "\" names no endpoint; give ", kForm));
  }
  std::vector<std::string> endpoints;
  for (absl::string_view endpoint : absl::StrSplit(list, ',')) {
    if (endpoint.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("registry URL \"", url, "\" has an empty endpoint (a stray comma)"));
    }
    if (!IsValidEndpoint(endpoint)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "registry URL \"", url, "\": \"", endpoint,
          "\" is not HOST:PORT (a host name, IPv4 or [IPv6] address, and a port 1-65535)"));
    }
    if (std::find(endpoints.begin(), endpoints.end(), endpoint) != endpoints.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("registry URL \"", url, "\" names ", endpoint, " twice"));
    }
    endpoints.emplace_back(endpoint);
  }
  return endpoints;
}

}  // namespace txcoord::cluster
