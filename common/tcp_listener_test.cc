#include "common/tcp_listener.h"

#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace txcoord {
namespace {

TEST(ReachableAtTest, AWildcardHostTakesTheEndpointsHost) {
  EXPECT_EQ(ReachableAt("0.0.0.0:7101", "10.0.0.5:7001"), "10.0.0.5:7101");
  EXPECT_EQ(ReachableAt("[::]:7101", "svc.internal:7001"), "svc.internal:7101");
  EXPECT_EQ(ReachableAt("0.0.0.0:7101", "[fd00::5]:7001"), "[fd00::5]:7101");
}

TEST(ReachableAtTest, OneBoundHostIsKept) {
  EXPECT_EQ(ReachableAt("10.0.0.5:7101", "svc.internal:7001"), "10.0.0.5:7101");
  EXPECT_EQ(ReachableAt("127.0.0.1:7101", "127.0.0.1:7001"), "127.0.0.1:7101");
  EXPECT_EQ(ReachableAt("127.0.0.1:7101", "localhost:7001"), "127.0.0.1:7101");
}

// Peers that reach the daemon from elsewhere would dial their own host.
TEST(ReachableAtTest, ALoopbackBindIsNowhereForAnEndpointThatIsNot) {
  EXPECT_EQ(ReachableAt("127.0.0.1:7101", "10.0.0.5:7001"), "");
  EXPECT_EQ(ReachableAt("[::1]:7101", "orders.internal:7001"), "");
}

TEST(ReachableAtTest, WhatDoesNotParseLeavesTheBoundAddress) {
  EXPECT_EQ(ReachableAt("0.0.0.0:7101", "no-port"), "0.0.0.0:7101");
  EXPECT_EQ(ReachableAt("garbage", "10.0.0.5:7001"), "garbage");
}

TEST(ListenTcpTest, APortOfZeroBindsAFreePortAndSaysWhich) {
  absl::StatusOr<TcpListener> listener = ListenTcp("127.0.0.1:0", "--listen");
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_NE(listener->address, "127.0.0.1:0");
  EXPECT_EQ(listener->address.rfind("127.0.0.1:", 0), 0u) << listener->address;
  close(listener->fd);
  EXPECT_FALSE(ListenTcp("127.0.0.1", "--listen").ok());
}

}  // namespace
}  // namespace txcoord
