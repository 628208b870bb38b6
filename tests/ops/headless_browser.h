// A real headless Chromium driven from a test over the DevTools protocol, to
// check the web console as an operator sees it: open a page, wait for the
// DOM to show something, press buttons with real mouse events, take
// screenshots. Chromium talks over a socket on its fds 3 and 4
// (--remote-debugging-pipe), so no port is opened and no WebSocket needed.
//
//   BrowserOptions options;
//   options.binary = *FindChromium();
//   options.dir = dir;
//   absl::StatusOr<std::unique_ptr<HeadlessBrowser>> browser = HeadlessBrowser::Start(options);
//   (*browser)->Navigate("http://127.0.0.1:8080/ui");
//   (*browser)->WaitFor("document.querySelector('tr.stuck') !== null", absl::Seconds(10));
//   (*browser)->Click("button#retry");
#ifndef TXCOORD_TESTS_OPS_HEADLESS_BROWSER_H_
#define TXCOORD_TESTS_OPS_HEADLESS_BROWSER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace txcoord::testing {

// The path of a Chromium binary ("chromium" or "chromium-browser" on $PATH),
// or nullopt if none is installed.
std::optional<std::string> FindChromium();

struct BrowserOptions {
  std::string binary;  // from FindChromium()
  // Holds the throw-away profile and Chromium's log (chromium.log).
  std::string dir;
  int width = 1280;
  int height = 1000;
  // Deadline of each protocol call.
  absl::Duration call_timeout = absl::Seconds(30);
};

// One browser with one page. Not thread-safe. The browser runs in a process
// group of its own, which the destructor kills (after asking it to close).
class HeadlessBrowser final {
 public:
  static absl::StatusOr<std::unique_ptr<HeadlessBrowser>> Start(BrowserOptions options);
  ~HeadlessBrowser();
  HeadlessBrowser(const HeadlessBrowser&) = delete;
  HeadlessBrowser& operator=(const HeadlessBrowser&) = delete;

  // Loads `url` and waits for its load event.
  absl::Status Navigate(const std::string& url);
  // Evaluates a JavaScript expression in the page (awaiting a promise) and
  // returns its value as JSON. A thrown exception is an INTERNAL error
  // quoting it.
  absl::StatusOr<nlohmann::json> Evaluate(const std::string& expression);
  // Evaluates `expression` every 100 ms until it is truthy.
  // DEADLINE_EXCEEDED after `timeout`, naming the expression.
  absl::Status WaitFor(const std::string& expression, absl::Duration timeout);
  // Scrolls the first element matching the CSS `selector` into view and
  // clicks its centre with the mouse, as a user would. NOT_FOUND if no
  // element matches.
  absl::Status Click(const std::string& selector);
  // Types `text` into the focused element.
  absl::Status Type(const std::string& text);
  // A PNG of the whole page, scrolled or not.
  absl::StatusOr<std::string> Screenshot();
  // Errors the page reported so far: uncaught exceptions, console.error,
  // and what the browser logged at error level (failed loads, blocked
  // content such as a script or style the page's CSP refused).
  const std::vector<std::string>& page_errors() const { return page_errors_; }

 private:
  HeadlessBrowser(BrowserOptions options, pid_t pid, int fd);
  // Sends a command (to the page's session unless `browser_level`) and
  // waits for its answer, recording events that arrive meanwhile.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, nlohmann::json params,
                                      bool browser_level = false);
  // The next message from the browser; its end of the socket closing is
  // UNAVAILABLE.
  absl::StatusOr<nlohmann::json> Receive(absl::Time deadline);
  void Record(const nlohmann::json& event);

  const BrowserOptions options_;
  const pid_t pid_;
  const int fd_;         // our end of the socket that is Chromium's fds 3 and 4
  std::string pending_;  // received bytes not yet ending in a NUL
  int next_id_ = 1;
  std::string session_;
  bool loaded_ = false;  // a Page.loadEventFired since the last Navigate
  std::vector<std::string> page_errors_;
};

}  // namespace txcoord::testing

#endif  // TXCOORD_TESTS_OPS_HEADLESS_BROWSER_H_
