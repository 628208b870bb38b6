#include "cluster/node_record.h"

#include "absl/strings/str_cat.h"

namespace txcoord::cluster {

std::string ConfigPrefix(const std::string& prefix, const std::string& service) {
  return absl::StrCat(prefix, "/config/", service, "/");
}

}  // namespace txcoord::cluster
