#include "participant/lock_table.h"

#include <thread>

#include "gtest/gtest.h"

namespace txcoord::participant {
namespace {

LockKey Exclusive(const std::string& key) { return {key, "row " + key, true}; }
LockKey Shared(const std::string& key) { return {key, "row " + key, false}; }

TEST(ParticipantLockTableTest, ExclusiveKeyConflictsWithAnotherOwner) {
  LockTable locks;
  EXPECT_FALSE(locks.TryAcquire("a", {Exclusive("k")}).has_value());
  std::optional<LockConflict> conflict = locks.TryAcquire("b", {Exclusive("k")});
  ASSERT_TRUE(conflict.has_value());
  EXPECT_EQ(conflict->holder, "a");
  EXPECT_EQ(conflict->description, "row k");
  EXPECT_TRUE(locks.TryAcquire("b", {Shared("k")}).has_value());
}

TEST(ParticipantLockTableTest, SharedKeysAreCompatibleButBlockExclusive) {
  LockTable locks;
  EXPECT_FALSE(locks.TryAcquire("a", {Shared("k")}).has_value());
  EXPECT_FALSE(locks.TryAcquire("b", {Shared("k")}).has_value());
  EXPECT_TRUE(locks.TryAcquire("c", {Exclusive("k")}).has_value());
  EXPECT_TRUE(locks.TryAcquire("a", {Exclusive("k")}).has_value());  // b shares it
  locks.ReleaseAll("b");
  EXPECT_FALSE(locks.TryAcquire("a", {Exclusive("k")}).has_value());  // sole sharer upgrades
  EXPECT_TRUE(locks.TryAcquire("b", {Shared("k")}).has_value());
}

// The empty owner names local writes, which must never hold a lock: one
// held under it would let every local write through.
TEST(ParticipantLockTableDeathTest, AcquiringWithoutAnOwnerStopsTheProcess) {
  LockTable locks;
  EXPECT_DEATH(locks.TryAcquire("", {Exclusive("k")}), "a lock acquired without an owner");
}

TEST(ParticipantLockTableTest, OwnerNeverConflictsWithItself) {
  LockTable locks;
  EXPECT_FALSE(locks.TryAcquire("a", {Exclusive("k")}).has_value());
  EXPECT_FALSE(locks.TryAcquire("a", {Exclusive("k"), Shared("k")}).has_value());
  EXPECT_EQ(locks.HeldBy("a"), 1u);
}

TEST(ParticipantLockTableTest, AcquiresAllOrNothing) {
  LockTable locks;
  ASSERT_FALSE(locks.TryAcquire("a", {Exclusive("k2")}).has_value());
  EXPECT_TRUE(locks.TryAcquire("b", {Exclusive("k1"), Exclusive("k2"), Exclusive("k3")}));
  EXPECT_EQ(locks.HeldBy("b"), 0u);
  EXPECT_EQ(locks.KeyCount(), 1u);
}

TEST(ParticipantLockTableTest, ReleaseAllFreesEveryKeyOfTheOwner) {
  LockTable locks;
  ASSERT_FALSE(locks.TryAcquire("a", {Exclusive("k1"), Shared("k2")}).has_value());
  ASSERT_FALSE(locks.TryAcquire("b", {Shared("k2")}).has_value());
  locks.ReleaseAll("a");
  locks.ReleaseAll("a");
  EXPECT_EQ(locks.KeyCount(), 1u);
  EXPECT_FALSE(locks.TryAcquire("c", {Exclusive("k1")}).has_value());
}

TEST(ParticipantLockTableTest, EmptyOwnerConflictsWithEveryHolder) {
  LockTable locks;
  ASSERT_FALSE(locks.TryAcquire("a", {Shared("k")}).has_value());
  EXPECT_TRUE(locks.FindConflict("", {Exclusive("k")}).has_value());
  EXPECT_FALSE(locks.FindConflict("", {Shared("k")}).has_value());
  EXPECT_FALSE(locks.FindConflict("", {Exclusive("other")}).has_value());
}

TEST(ParticipantLockTableTest, WaitUntilFreeReturnsOnceHolderReleases) {
  LockTable locks;
  ASSERT_FALSE(locks.TryAcquire("a", {Exclusive("k")}).has_value());
  std::optional<LockConflict> result = LockConflict{};
  std::thread waiter([&] {
    result = locks.WaitUntilFree("b", {Exclusive("k")}, absl::Now() + absl::Seconds(30));
  });
  locks.ReleaseAll("a");
  waiter.join();
  EXPECT_FALSE(result.has_value());
  EXPECT_EQ(locks.KeyCount(), 0u);  // waiting acquires nothing
}

TEST(ParticipantLockTableTest, WaitUntilFreeTimesOutWithTheConflict) {
  LockTable locks;
  ASSERT_FALSE(locks.TryAcquire("a", {Exclusive("k")}).has_value());
  std::optional<LockConflict> conflict =
      locks.WaitUntilFree("b", {Exclusive("k")}, absl::Now() + absl::Milliseconds(20));
  ASSERT_TRUE(conflict.has_value());
  EXPECT_EQ(conflict->holder, "a");
}

}  // namespace
}  // namespace txcoord::participant
