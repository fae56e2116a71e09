// The controller's small pieces: journal records, credentials, name locks,
// the error conversion at the boundary.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "csi/controller/controller_error.h"
#include "csi/controller/credentials.h"
#include "csi/controller/journal_record.h"
#include "csi/controller/name_locks.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {
namespace {

const std::string kRecordUuid = "0123456789abcdef0123456789abcdef";

TEST(JournalRecordTest, VolumeRecordRoundTrips) {
  VolumeJournalRecord r{kRecordUuid, 1u << 30, 2u << 30, "fp", "snapshot:x", true, {{"pool", "kube"}}, "att-1"};
  auto back = DecodeVolumeJournalRecord(EncodeRecord(r), "name/a");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->uuid, r.uuid);
  EXPECT_EQ(back->size, r.size);
  EXPECT_EQ(back->capacity, r.capacity);
  EXPECT_EQ(back->fingerprint, "fp");
  EXPECT_EQ(back->source, "snapshot:x");
  EXPECT_TRUE(back->ready);
  EXPECT_EQ(back->context, r.context);
  EXPECT_EQ(back->attempt, "att-1");
}

TEST(JournalRecordTest, ARecordWithoutAnAttemptDecodes) {
  // Records written before the attempt field: they decode, with "" (a
  // takeover's swap then writes one).
  auto back = DecodeVolumeJournalRecord(
      R"({"uuid":"0123456789abcdef0123456789abcdef","size":1,"fingerprint":"f","state":"creating"})", "name/a");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->attempt, "");
  EXPECT_EQ(EncodeRecord(*back).find("attempt"), std::string::npos);
}

TEST(JournalRecordTest, SnapshotRecordRoundTrips) {
  SnapshotJournalRecord r{kRecordUuid, kRecordUuid, false, 5, 6, 7, "att-2"};
  auto back = DecodeSnapshotJournalRecord(EncodeRecord(r), "name/s");
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->ready);
  EXPECT_EQ(back->size, 5u);
  EXPECT_EQ(back->created_s, 6);
  EXPECT_EQ(back->created_nanos, 7);
  EXPECT_EQ(back->attempt, "att-2");
}

TEST(JournalRecordTest, GarbageIsEioNamingTheKey) {
  for (const char* bad : {"", "{", "[]", R"({"uuid": "x", "size": 1, "fingerprint": "", "state": "ready"})",
                          R"({"uuid": 5})"}) {
    auto r = DecodeVolumeJournalRecord(bad, "name/k");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, EIO);
    EXPECT_NE(r.error().message.find("name/k"), std::string::npos);
  }
  EXPECT_FALSE(DecodeSnapshotJournalRecord("{}", "name/s"));
}

TEST(CredentialsTest, UserFromSecretsNamesTheSecret) {
  auto u = UserFromSecrets({{"userID", "kube"}, {"userKey", "AQkey=="}}, "provisioner");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->client_name, "client.kube");
  EXPECT_EQ(u->key.reveal(), "AQkey==");
  auto r = UserFromSecrets({{"userKey", "AQkey=="}}, "snapshotter");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, kInvalidArgument);
  EXPECT_EQ(r.error().message, "the snapshotter secret's 'userID' is required");
  r = UserFromSecrets({{"userID", "client.kube"}, {"userKey", "AQkey=="}}, "provisioner");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find("AQkey"), std::string::npos);
  r = UserFromSecrets({{"userID", "kube"}}, "controller-expand");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "the controller-expand secret's 'userKey' is required");
}

TEST(CredentialsTest, CacheRemembersPerCluster) {
  CredentialCache cache;
  ClusterRef dev{true, "dev"};
  EXPECT_FALSE(cache.Get(dev));
  CephUser user{"client.kube", Secret("k1")};
  cache.Remember(dev, user);
  cache.RememberPool({dev, "kube", ""});
  cache.RememberPool({dev, "kube", ""});
  cache.RememberPool({dev, "rbd", "ns"});
  ASSERT_TRUE(cache.Get(dev));
  EXPECT_EQ(cache.Get(dev)->key.reveal(), "k1");
  EXPECT_FALSE(cache.Get(ClusterRef{false, "dev"}));
  EXPECT_EQ(cache.Pools().size(), 2u);
}

TEST(NameLocksTest, ASecondCallerWaitsForTheFirst) {
  NameLocks locks;
  std::atomic<bool> second_in{false};
  auto guard = std::make_unique<NameLocks::Guard>(locks.Lock("a"));
  std::thread t([&] {
    auto g = locks.Lock("a");
    second_in = true;
  });
  auto other = locks.Lock("b");  // other keys are free
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(second_in.load());
  EXPECT_TRUE(locks.IsLocked("a"));
  guard.reset();
  t.join();
  EXPECT_TRUE(second_in.load());
  EXPECT_FALSE(locks.IsLocked("a"));
}

TEST(ControllerErrorTest, CephxRefusalNamesTheSecret) {
  auto s = ToControllerStatus(Error{EACCES, "cephx refused client.kube"}, "snapshotter");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("check the snapshotter secret's userID and userKey"), std::string::npos);
  EXPECT_EQ(ToControllerStatus(Error{EPERM, "x"}, "provisioner").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToControllerStatus(Error{ETIMEDOUT, "x"}, "p").error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToControllerStatus(Error{kOutOfRange, "x"}, "p").error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(ToControllerStatus(Error{EBUSY, "x"}, "p").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ToControllerStatus(Error{EIO, "x"}, "p").error_code(), grpc::StatusCode::INTERNAL);
}

TEST(ControllerErrorTest, PoolErrorNamesPoolAndNamespace) {
  Error e = PoolError(Error{ENOENT, "no"}, CephTarget{"m", "kube", ""});
  EXPECT_EQ(e.code, kInvalidArgument);
  EXPECT_NE(e.message.find("pool 'kube' does not exist"), std::string::npos);
  e = PoolError(Error{ENOENT, "no"}, CephTarget{"m", "kube", "team"});
  EXPECT_NE(e.message.find("namespace 'team'"), std::string::npos);
  EXPECT_EQ(PoolError(Error{EACCES, "no"}, CephTarget{}).code, EACCES);
  // A store message that names the pool already is kept as it is.
  e = PoolError(Error{ENOENT, "pool 'kube' does not exist"}, CephTarget{"m", "kube", ""});
  EXPECT_EQ(e.code, kInvalidArgument);
  EXPECT_EQ(e.message, "pool 'kube' does not exist");
}

}  // namespace
}  // namespace rbdnbd::csi
