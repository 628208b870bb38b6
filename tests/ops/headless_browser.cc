#include "tests/ops/headless_browser.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "harness/spawn.h"

namespace txcoord::testing {
namespace {

using nlohmann::json;

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

int PollTimeoutMs(absl::Time deadline) {
  const absl::Duration left = std::max(deadline - absl::Now(), absl::ZeroDuration());
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, INT_MAX));
}

// The description of a thrown value from Runtime.exceptionDetails.
std::string ExceptionText(const json& details) {
  const json exception = details.value("exception", json::object());
  return exception.value("description", details.value("text", std::string("exception")));
}

}  // namespace

std::optional<std::string> FindChromium() {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin", ':', absl::SkipEmpty())) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      std::string candidate = absl::StrCat(dir, "/", name);
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<HeadlessBrowser>> HeadlessBrowser::Start(BrowserOptions options) {
  if (options.binary.empty() || options.dir.empty()) {
    return absl::InvalidArgumentError("HeadlessBrowser: binary and dir are required");
  }
  int sockets[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return ErrnoError("socketpair");
  }
  const std::string log = absl::StrCat(options.dir, "/chromium.log");
  const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    close(sockets[0]);
    close(sockets[1]);
    return ErrnoError(absl::StrCat("open ", log));
  }
  // The shell moves the socket from stdin/stdout to the fds 3 and 4 where
  // --remote-debugging-pipe expects it, then becomes Chromium.
  std::vector<std::string> argv = {
      "/bin/sh", "-c", "exec 3<&0 4>&1 </dev/null >&2 && exec \"$0\" \"$@\"", options.binary,
      "--headless=new", "--remote-debugging-pipe",
      absl::StrCat("--user-data-dir=", options.dir, "/profile"),
      absl::StrCat("--window-size=", options.width, ",", options.height),
      // Nothing but the servers of the test: no name resolves, no
      // background traffic, no first-run pages.
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--disable-extensions", "--no-first-run", "--no-default-browser-check", "--disable-gpu",
      "--hide-scrollbars", "--mute-audio"};
  // Chromium refuses to run as root with its sandbox.
  if (geteuid() == 0) argv.push_back("--no-sandbox");
  argv.push_back("about:blank");
  absl::StatusOr<pid_t> pid = SpawnChild(argv, sockets[1], sockets[1], log_fd);
  close(sockets[1]);
  close(log_fd);
  if (!pid.ok()) {
    close(sockets[0]);
    return pid.status();
  }
  std::unique_ptr<HeadlessBrowser> browser(
      new HeadlessBrowser(std::move(options), *pid, sockets[0]));

  absl::StatusOr<json> target =
      browser->Call("Target.createTarget", {{"url", "about:blank"}}, true);
  if (!target.ok()) return target.status();
  absl::StatusOr<json> attached = browser->Call(
      "Target.attachToTarget", {{"targetId", (*target)["targetId"]}, {"flatten", true}}, true);
  if (!attached.ok()) return attached.status();
  browser->session_ = (*attached)["sessionId"].get<std::string>();
  for (const char* domain : {"Page.enable", "Runtime.enable", "Log.enable"}) {
    if (absl::StatusOr<json> r = browser->Call(domain, json::object()); !r.ok()) return r.status();
  }
  absl::StatusOr<json> metrics =
      browser->Call("Emulation.setDeviceMetricsOverride", {{"width", browser->options_.width},
                                                           {"height", browser->options_.height},
                                                           {"deviceScaleFactor", 1},
                                                           {"mobile", false}});
  if (!metrics.ok()) return metrics.status();
  return browser;
}

HeadlessBrowser::HeadlessBrowser(BrowserOptions options, pid_t pid, int fd)
    : options_(std::move(options)), pid_(pid), fd_(fd) {}

HeadlessBrowser::~HeadlessBrowser() {
  // Asked first, so that it can remove its own files; killed regardless,
  // with every helper process in its group.
  (void)Call("Browser.close", json::object(), true);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (waitpid(pid_, nullptr, WNOHANG) == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  kill(-pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  close(fd_);
}

absl::StatusOr<json> HeadlessBrowser::Call(const std::string& method, json params,
                                           bool browser_level) {
  const int id = next_id_++;
  json message = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!browser_level) message["sessionId"] = session_;
  const std::string bytes = message.dump() + '\0';
  for (size_t sent = 0; sent < bytes.size();) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat(method, ": ", std::strerror(errno)));
    sent += static_cast<size_t>(n);
  }
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  for (;;) {
    absl::StatusOr<json> answer = Receive(deadline);
    if (!answer.ok())
      return absl::Status(answer.status().code(),
                          absl::StrCat(method, ": ", answer.status().message()));
    if (!answer->contains("id")) {
      Record(*answer);
      continue;
    }
    if ((*answer)["id"] != id) continue;  // the late answer to an abandoned call
    if (answer->contains("error")) {
      return absl::InternalError(absl::StrCat(method, ": ", (*answer)["error"].dump()));
    }
    return answer->value("result", json::object());
  }
}

absl::StatusOr<json> HeadlessBrowser::Receive(absl::Time deadline) {
  for (;;) {
    const size_t end = pending_.find('\0');
    if (end != std::string::npos) {
      json message = json::parse(pending_.substr(0, end), nullptr,
                                 /*allow_exceptions=*/false);
      pending_.erase(0, end + 1);
      if (message.is_discarded()) return absl::DataLossError("a message that is not JSON");
      return message;
    }
    if (absl::Now() >= deadline) return absl::DeadlineExceededError("no answer from Chromium");
    pollfd ready = {fd_, POLLIN, 0};
    if (poll(&ready, 1, PollTimeoutMs(deadline)) < 0 && errno != EINTR) return ErrnoError("poll");
    if (ready.revents == 0) continue;
    char buffer[1 << 16];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("recv");
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("Chromium closed its pipe (see ", options_.dir, "/chromium.log)"));
    }
    pending_.append(buffer, static_cast<size_t>(n));
  }
}

void HeadlessBrowser::Record(const json& event) {
  const std::string method = event.value("method", "");
  const json params = event.value("params", json::object());
  if (method == "Page.loadEventFired") {
    loaded_ = true;
  } else if (method == "Runtime.exceptionThrown") {
    page_errors_.push_back(ExceptionText(params.value("exceptionDetails", json::object())));
  } else if (method == "Runtime.consoleAPICalled" && params.value("type", "") == "error") {
    std::string text = "console.error:";
    for (const json& arg : params.value("args", json::array())) {
      absl::StrAppend(&text, " ",
                      arg.contains("value") ? arg["value"].dump() : arg.value("description", "?"));
    }
    page_errors_.push_back(std::move(text));
  } else if (method == "Log.entryAdded") {
    const json entry = params.value("entry", json::object());
    if (entry.value("level", "") == "error") {
      page_errors_.push_back(absl::StrCat(entry.value("text", ""), " ", entry.value("url", "")));
    }
  }
}

absl::Status HeadlessBrowser::Navigate(const std::string& url) {
  loaded_ = false;
  absl::StatusOr<json> navigated = Call("Page.navigate", {{"url", url}});
  if (!navigated.ok()) return navigated.status();
  if (navigated->contains("errorText")) {
    return absl::UnavailableError(
        absl::StrCat("loading ", url, ": ", (*navigated)["errorText"].get<std::string>()));
  }
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  while (!loaded_) {
    absl::StatusOr<json> event = Receive(deadline);
    if (!event.ok()) return event.status();
    Record(*event);
  }
  return absl::OkStatus();
}

absl::StatusOr<json> HeadlessBrowser::Evaluate(const std::string& expression) {
  absl::StatusOr<json> evaluated =
      Call("Runtime.evaluate",
           {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
  if (!evaluated.ok()) return evaluated.status();
  if (evaluated->contains("exceptionDetails")) {
    return absl::InternalError(absl::StrCat("evaluating ", expression, ": ",
                                            ExceptionText((*evaluated)["exceptionDetails"])));
  }
  return (*evaluated)["result"].value("value", json());
}

absl::Status HeadlessBrowser::WaitFor(const std::string& expression, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  for (;;) {
    // An exception (the element is not there yet) counts as "not yet".
    absl::StatusOr<json> value = Evaluate(absl::StrCat("!!(", expression, ")"));
    if (value.ok() && *value == true) return absl::OkStatus();
    last = value.ok() ? value->dump() : std::string(value.status().message());
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("after ", absl::FormatDuration(timeout),
                                                      " still not true: ", expression, " (", last,
                                                      ")"));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status HeadlessBrowser::Click(const std::string& selector) {
  absl::StatusOr<json> centre = Evaluate(
      absl::StrCat("(() => { const e = document.querySelector(", json(selector).dump(),
                   "); if (!e) return null; e.scrollIntoView({block: 'center'});"
                   " const r = e.getBoundingClientRect(); return {x: r.x + r.width / 2, y: "
                   "r.y + r.height / 2}; })()"));
  if (!centre.ok()) return centre.status();
  if (centre->is_null()) return absl::NotFoundError(absl::StrCat("no element matches ", selector));
  for (const char* type : {"mouseMoved", "mousePressed", "mouseReleased"}) {
    json event = {{"type", type}, {"x", (*centre)["x"]}, {"y", (*centre)["y"]}};
    if (std::strcmp(type, "mouseMoved") != 0) {
      event["button"] = "left";
      event["clickCount"] = 1;
    }
    if (absl::StatusOr<json> r = Call("Input.dispatchMouseEvent", event); !r.ok())
      return r.status();
  }
  return absl::OkStatus();
}

absl::Status HeadlessBrowser::Type(const std::string& text) {
  return Call("Input.insertText", {{"text", text}}).status();
}

absl::StatusOr<std::string> HeadlessBrowser::Screenshot() {
  absl::StatusOr<json> layout = Call("Page.getLayoutMetrics", json::object());
  if (!layout.ok()) return layout.status();
  const json size = (*layout)["cssContentSize"];
  absl::StatusOr<json> shot = Call(
      "Page.captureScreenshot",
      {{"format", "png"},
       {"captureBeyondViewport", true},
       {"clip",
        {{"x", 0}, {"y", 0}, {"width", size["width"]}, {"height", size["height"]}, {"scale", 1}}}});
  if (!shot.ok()) return shot.status();
  std::string png;
  if (!absl::Base64Unescape((*shot)["data"].get<std::string>(), &png)) {
    return absl::DataLossError("Page.captureScreenshot: data is not base64");
  }
  return png;
}

}  // namespace txcoord::testing
