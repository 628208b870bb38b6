// Readiness for systemd units of Type=notify: one datagram to the socket
// named by $NOTIFY_SOCKET, the same protocol as sd_notify(3) but without
// linking libsystemd. Outside such a unit ($NOTIFY_SOCKET unset) it does
// nothing, so the daemons call it unconditionally.
//
//   NotifySystemd("READY=1");     // once the daemon serves
//   NotifySystemd("STOPPING=1");  // when it starts to drain
#ifndef TXCOORD_COMMON_SYSTEMD_NOTIFY_H_
#define TXCOORD_COMMON_SYSTEMD_NOTIFY_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace txcoord {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET:
// a path, or an abstract socket when it starts with '@'. OK without
// sending when the variable is unset or empty; an error when it names a
// socket that cannot be reached. Thread-safe.
absl::Status NotifySystemd(absl::string_view state);

}  // namespace txcoord

#endif  // TXCOORD_COMMON_SYSTEMD_NOTIFY_H_
