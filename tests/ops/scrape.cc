#include "tests/ops/scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace txcoord::testing {

absl::StatusOr<std::string> MetricsAddressFromLog(const std::string& log_path) {
  std::ifstream log(log_path);
  if (!log) return absl::NotFoundError(absl::StrCat("cannot read ", log_path));
  const std::string kMarker = " metrics on ";
  std::string line, address;
  while (std::getline(log, line)) {
    const size_t at = line.find(kMarker);
    if (at != std::string::npos) address = line.substr(at + kMarker.size());
  }
  if (address.empty()) {
    return absl::NotFoundError(absl::StrCat("no \"metrics on\" line in ", log_path));
  }
  return address;
}

absl::StatusOr<std::string> HttpGet(const std::string& address, const std::string& path) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("bad address ", address));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: ", address));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::strerror(errno));
  // A guard against a hung server, not a wait for anything.
  timeval timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  absl::Status status;
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    status = absl::UnavailableError(absl::StrCat("connect ", address, ": ", std::strerror(errno)));
  } else {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", address, "\r\nConnection: close\r\n\r\n");
    if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      status =
          absl::UnavailableError(absl::StrCat("send to ", address, ": ", std::strerror(errno)));
    }
    char buffer[8192];
    while (status.ok()) {
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n == 0) break;
      if (n < 0) {
        status = absl::DeadlineExceededError(
            absl::StrCat("reading from ", address, ": ", std::strerror(errno)));
        break;
      }
      response.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  if (!status.ok()) return status;
  return response;
}

std::optional<double> Scrape::Value(const std::string& name) const {
  auto it = series.find(name);
  if (it == series.end()) return std::nullopt;
  return it->second;
}

std::optional<double> Scrape::Sum(const std::string& metric) const {
  if (std::optional<double> value = Value(metric)) return value;
  std::optional<double> sum;
  for (const auto& [name, value] : series) {
    if (absl::StartsWith(name, metric + "{")) sum = sum.value_or(0) + value;
  }
  return sum;
}

absl::StatusOr<double> MetricInLog(const std::string& log_path, const std::string& metric) {
  absl::StatusOr<std::string> address = MetricsAddressFromLog(log_path);
  if (!address.ok()) return address.status();
  absl::StatusOr<Scrape> scrape = ScrapeMetrics(*address);
  if (!scrape.ok()) return scrape.status();
  std::optional<double> value = scrape->Sum(metric);
  if (!value.has_value()) return absl::NotFoundError(absl::StrCat("no series of ", metric));
  return *value;
}

absl::StatusOr<Scrape> ScrapeMetrics(const std::string& address) {
  absl::StatusOr<std::string> response = HttpGet(address, "/metrics");
  if (!response.ok()) return response.status();
  if (!absl::StartsWith(*response, "HTTP/1.1 200 ")) {
    return absl::InternalError(
        absl::StrCat("GET /metrics at ", address, ": ", response->substr(0, response->find('\r'))));
  }
  const size_t body = response->find("\r\n\r\n");
  Scrape scrape;
  scrape.text = response->substr(body == std::string::npos ? response->size() : body + 4);
  for (absl::string_view line : absl::StrSplit(scrape.text, '\n', absl::SkipEmpty())) {
    if (absl::StartsWith(line, "#")) continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    absl::string_view text = line.substr(space + 1);
    if (space == absl::string_view::npos ||
        !(absl::SimpleAtod(text, &value) || text == "+Inf" || text == "NaN")) {
      return absl::InternalError(absl::StrCat("unparsable metrics line: ", line));
    }
    scrape.series[std::string(line.substr(0, space))] = value;
  }
  return scrape;
}

}  // namespace txcoord::testing
