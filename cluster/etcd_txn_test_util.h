// For the etcd tests: the same checks of Etcd::Txn, run against a real etcd
// (etcd_client_test) and MemoryEtcd (memory_etcd_test), so that the model
// the unit tests and the simulator use answers as etcd does.
#ifndef TXCOORD_CLUSTER_ETCD_TXN_TEST_UTIL_H_
#define TXCOORD_CLUSTER_ETCD_TXN_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/etcd.h"
#include "gtest/gtest.h"

namespace txcoord::cluster::testing {

inline TxnOp PutOp(const std::string& key, const std::string& value, int64_t lease = 0) {
  return TxnOp{TxnOp::Type::kPut, key, value, lease};
}

// Every key under `root`, as "key=value".
inline std::vector<std::string> KeysUnder(Etcd* etcd, const std::string& root) {
  std::vector<std::string> keys;
  absl::StatusOr<RangeResult> got = etcd->GetPrefix(root);
  EXPECT_TRUE(got.ok()) << got.status();
  if (!got.ok()) return keys;
  for (const KeyValue& kv : got->kvs) keys.push_back(kv.key.substr(root.size()) + "=" + kv.value);
  return keys;
}

// A guarded transaction writes all of its operations at one revision when
// its comparisons hold (create and mod revisions, 0 for a missing key), and
// nothing otherwise; a prefix delete removes exactly the keys under it.
inline void ExpectTxnSemantics(Etcd* etcd, const std::string& root) {
  const std::string owner = root + "owner";
  absl::StatusOr<TxnResult> created =
      etcd->Txn({{owner, TxnCompare::Target::kCreateRevision, 0}},
                {PutOp(owner, "me"), PutOp(root + "tx/1/commit", "c1"),
                 PutOp(root + "tx/1/mark/p", "m"), PutOp(root + "tx/10/commit", "c10")});
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(created->succeeded);
  absl::StatusOr<RangeResult> read = etcd->GetPrefix(root);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->kvs.size(), 4u);
  for (const KeyValue& kv : read->kvs) {
    EXPECT_EQ(kv.mod_revision, created->revision) << kv.key << ": one revision for the txn";
  }
  EXPECT_EQ(read->revision, created->revision);

  // The owner key exists now: a second "create" fails and writes nothing.
  absl::StatusOr<TxnResult> again =
      etcd->Txn({{owner, TxnCompare::Target::kCreateRevision, 0}}, {PutOp(owner, "other")});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->succeeded);
  EXPECT_EQ(again->revision, created->revision);

  // Fenced on the owner's create revision: holds across its rewrites.
  ASSERT_TRUE(etcd->Put(owner, "me, renewed").ok());
  const TxnCompare fence{owner, TxnCompare::Target::kCreateRevision, created->revision};
  absl::StatusOr<TxnResult> ended = etcd->Txn(
      {fence}, {TxnOp{TxnOp::Type::kDeletePrefix, root + "tx/1/"}, PutOp(root + "kept", "k")});
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(ended->succeeded);
  EXPECT_EQ(KeysUnder(etcd, root),
            (std::vector<std::string>{"kept=k", "owner=me, renewed", "tx/10/commit=c10"}));

  // A mod-revision comparison that fails, then a new owner: the old fence
  // no longer holds and its writes are refused.
  absl::StatusOr<TxnResult> stale = etcd->Txn(
      {{root + "kept", TxnCompare::Target::kModRevision, created->revision}}, {PutOp(owner, "x")});
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_FALSE(stale->succeeded);
  ASSERT_EQ(*etcd->Delete(owner), 1);
  ASSERT_TRUE(etcd->Put(owner, "new owner").ok());
  absl::StatusOr<TxnResult> fenced =
      etcd->Txn({fence}, {TxnOp{TxnOp::Type::kDelete, root + "tx/10/commit"}});
  ASSERT_TRUE(fenced.ok()) << fenced.status();
  EXPECT_FALSE(fenced->succeeded);
  EXPECT_EQ(KeysUnder(etcd, root),
            (std::vector<std::string>{"kept=k", "owner=new owner", "tx/10/commit=c10"}));
}

// etcd refuses, before comparing anything, a transaction that puts one key
// twice or puts a key that one of its deletes covers (INVALID_ARGUMENT,
// "duplicate key given in txn request"); deletes may overlap each other.
inline void ExpectTxnRefusesDuplicateKeys(Etcd* etcd, const std::string& root) {
  const std::string key = root + "dup/a";
  absl::StatusOr<TxnResult> twice = etcd->Txn({}, {PutOp(key, "1"), PutOp(key, "2")});
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument) << twice.status();
  absl::StatusOr<TxnResult> put_and_delete =
      etcd->Txn({}, {PutOp(key, "1"), TxnOp{TxnOp::Type::kDelete, key}});
  EXPECT_EQ(put_and_delete.status().code(), absl::StatusCode::kInvalidArgument)
      << put_and_delete.status();
  absl::StatusOr<TxnResult> inside_deleted_prefix =
      etcd->Txn({{root + "dup/none", TxnCompare::Target::kCreateRevision, 1}},
                {TxnOp{TxnOp::Type::kDeletePrefix, root + "dup/"}, PutOp(key, "1")});
  EXPECT_EQ(inside_deleted_prefix.status().code(), absl::StatusCode::kInvalidArgument)
      << inside_deleted_prefix.status();
  EXPECT_TRUE(KeysUnder(etcd, root + "dup/").empty());

  absl::StatusOr<TxnResult> overlapping_deletes =
      etcd->Txn({}, {TxnOp{TxnOp::Type::kDeletePrefix, root + "dup/"},
                     TxnOp{TxnOp::Type::kDeletePrefix, root + "dup/"},
                     TxnOp{TxnOp::Type::kDelete, key}, PutOp(root + "other", "1")});
  ASSERT_TRUE(overlapping_deletes.ok()) << overlapping_deletes.status();
  EXPECT_TRUE(overlapping_deletes->succeeded);
}

}  // namespace txcoord::cluster::testing

#endif  // TXCOORD_CLUSTER_ETCD_TXN_TEST_UTIL_H_
