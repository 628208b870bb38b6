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

TEST(SystemdNotifyTest, WithoutNotifySocketDoesNothing) {
  unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifySystemd("READY=1").ok());
}

TEST(SystemdNotifyTest, SendsStateToSocketPath) {
  char dir[] = "/tmp/systemd_notify_test_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/notify";
  const int fd = BindDatagramSocket(path);
  ASSERT_GE(fd, 0);
  setenv("NOTIFY_SOCKET", path.c_str(), 1);
  EXPECT_TRUE(NotifySystemd("READY=1").ok());
  EXPECT_EQ(Receive(fd), "READY=1");
  unsetenv("NOTIFY_SOCKET");
  close(fd);
  unlink(path.c_str());
  rmdir(dir);
}

TEST(SystemdNotifyTest, SendsStateToAbstractSocket) {
  const std::string name = "@txcoord-notify-test-" + std::to_string(getpid());
  const int fd = BindDatagramSocket(name);
  ASSERT_GE(fd, 0);
  setenv("NOTIFY_SOCKET", name.c_str(), 1);
  EXPECT_TRUE(NotifySystemd("STOPPING=1").ok());
  EXPECT_EQ(Receive(fd), "STOPPING=1");
  unsetenv("NOTIFY_SOCKET");
  close(fd);
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
