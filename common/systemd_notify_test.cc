#include "common/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace txcoord {
namespace {

// A datagram socket bound to `name` (a path, or '@' for an abstract one),
// as systemd's manager listens on.
int BindDatagramSocket(const std::string& name) {
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, name.data(), name.size());
  if (name[0] == '@') address.sun_path[0] = '\0';
  const socklen_t length = offsetof(sockaddr_un, sun_path) + name.size();
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string Receive(int fd) {
  char buffer[256];
  const ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
  return n < 0 ? "" : std::string(buffer, n);
}

// What a socket bound to `name` receives when NotifySystemd(state) is
// called with NOTIFY_SOCKET=name ("" if nothing).
std::string NotifyThrough(const std::string& name, const std::string& state) {
  const int fd = BindDatagramSocket(name);
  if (fd < 0) {
    ADD_FAILURE() << "cannot bind " << name;
    return "";
  }
  setenv("NOTIFY_SOCKET", name.c_str(), 1);
  EXPECT_TRUE(NotifySystemd(state).ok());
  unsetenv("NOTIFY_SOCKET");
  const std::string received = Receive(fd);
  close(fd);
  return received;
}

TEST(SystemdNotifyTest, WithoutNotifySocketDoesNothing) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifySystemd("READY=1").ok());
}

TEST(SystemdNotifyTest, SendsStateToSocketPath) {
  char dir[] = "/tmp/systemd_notify_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/notify";
  EXPECT_EQ(NotifyThrough(path, "READY=1"), "READY=1");
  unlink(path.c_str());
  rmdir(dir);
}

TEST(SystemdNotifyTest, SendsStateToAbstractSocket) {
  const std::string name = "@txcoord-notify-test-" + std::to_string(getpid());
  EXPECT_EQ(NotifyThrough(name, "STOPPING=1"), "STOPPING=1");
}

TEST(SystemdNotifyTest, UnreachableSocketIsAnError) {
  setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
  EXPECT_FALSE(NotifySystemd("READY=1").ok());
  setenv("NOTIFY_SOCKET", "relative", 1);
  EXPECT_FALSE(NotifySystemd("READY=1").ok());
  unsetenv("NOTIFY_SOCKET");
}

}  // namespace
}  // namespace txcoord
