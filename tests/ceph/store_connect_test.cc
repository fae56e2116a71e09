// Connections (refusals, timeouts, unknown pools, reuse, idle close) and the
// free space answer.
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/ceph/ceph_test_env.h"

namespace rbdnbd::csi::test {
namespace {

using Clock = std::chrono::steady_clock;
using ConnectTest = StoreTest;

// The key with one character of its secret part changed: still a valid
// cephx key, just not the user's.
Secret WrongKey(const Secret& key) {
  std::string k = key.reveal();
  size_t i = 20;  // past the 12-byte header's 16 base64 chars, inside the secret
  k[i] = k[i] == 'A' ? 'B' : 'A';
  return Secret(k);
}

TEST_F(ConnectTest, AWrongKeyIsRefusedQuicklyAndTheMessageHoldsNoKey) {
  auto store = MakeLibrbdStore({});
  CephUser u = Kube();
  u.key = WrongKey(u.key);
  u.connect_timeout = std::chrono::seconds(20);
  auto t0 = Clock::now();
  auto s = store->Open(Target(), u);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().code == EACCES || s.error().code == EPERM) << ErrText(s);
  EXPECT_LT(secs, 10.0) << "a refusal must not wait for the connect timeout";
  EXPECT_NE(s.error().message.find("client.kube"), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().message.find(u.key.reveal()), std::string::npos);
  EXPECT_EQ(s.error().message.find(Kube().key.reveal()), std::string::npos);
  EXPECT_EQ(CachedConnectionCount(*store), 0) << "a failed connection is never cached";

  // The right key afterwards works (nothing poisoned by the failure).
  auto ok = store->Open(Target(), Kube());
  ASSERT_TRUE(ok) << ErrText(ok);
  EXPECT_TRUE((*ok)->CountTrash(prefix_));
}

TEST_F(ConnectTest, AnUnknownUserIsRefused) {
  auto store = MakeLibrbdStore({});
  CephUser u = Kube();
  u.client_name = "client.no-such-user-h1";
  auto s = store->Open(Target(), u);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().code == EACCES || s.error().code == EPERM) << ErrText(s);
}

TEST_F(ConnectTest, MonitorsThatNobodyServesTimeOutSayingSo) {
  auto store = MakeLibrbdStore({});
  CephUser u = Kube();
  u.connect_timeout = std::chrono::seconds(3);
  auto t0 = Clock::now();
  auto s = store->Open({"v2:127.0.0.1:1", kPool, ""}, u);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ETIMEDOUT) << ErrText(s);
  EXPECT_NE(s.error().message.find("nothing accepts"), std::string::npos) << s.error().message;
  EXPECT_LT(secs, 15.0);
}

TEST_F(ConnectTest, MissingInputsAreEinval) {
  CephUser nokey = Kube();
  nokey.key = Secret();
  auto a = store_->Open(Target(), nokey);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, EINVAL);
  auto b = store_->Open({"", kPool, ""}, Kube());
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, EINVAL);
}

TEST_F(ConnectTest, AnUnknownPoolIsEnoentNamingItAtTheFirstCall) {
  auto s = store_->Open(Target("no-such-pool-h1"), Kube());
  ASSERT_TRUE(s) << "Open does not check the pool: " << ErrText(s);
  auto st = (*s)->Stat("x");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ENOENT);
  EXPECT_NE(st.error().message.find("no-such-pool-h1"), std::string::npos) << st.error().message;
  auto j = (*s)->JournalReserve("obj", "k", "v");
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code, ENOENT);
  EXPECT_NE(j.error().message.find("no-such-pool-h1"), std::string::npos) << j.error().message;
  auto a = (*s)->AvailableBytes();
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, ENOENT);
}

TEST_F(ConnectTest, SessionsOfOneUserShareOneConnectionKeptWhileIdle) {
  auto store = MakeLibrbdStore({std::chrono::seconds(2)});
  const void* kube_handle = nullptr;
  {
    auto a = store->Open(Target(), Kube());
    auto b = store->Open(Target("rbd"), Kube());
    auto c = store->Open(Target(), Admin());
    ASSERT_TRUE(a && b && c);
    kube_handle = SessionClusterHandle(**a);
    ASSERT_NE(kube_handle, nullptr);
    EXPECT_EQ(SessionClusterHandle(**b), kube_handle) << "same user, another pool: same connection";
    EXPECT_NE(SessionClusterHandle(**c), kube_handle) << "another user: another connection";
    EXPECT_EQ(CachedConnectionCount(*store), 2);
    // Monitor commands (df) are bounded by the connect timeout.
    char v[32] = "";
    ASSERT_EQ(rados_conf_get(static_cast<rados_t>(const_cast<void*>(kube_handle)), "rados_mon_op_timeout", v,
                             sizeof(v)), 0);
    EXPECT_EQ(std::string(v), std::to_string(Kube().connect_timeout.count()));
  }
  // All sessions closed: the connections stay for idle_keep.
  EXPECT_EQ(CachedConnectionCount(*store), 2);
  {
    auto again = store->Open(Target(), Kube());
    ASSERT_TRUE(again);
    EXPECT_EQ(SessionClusterHandle(**again), kube_handle) << "reused within idle_keep";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto later = store->Open(Target(), Admin());
  ASSERT_TRUE(later) << ErrText(later);
  EXPECT_EQ(CachedConnectionCount(*store), 1) << "the idle connections were closed, a new one made";
  // A session in use is never swept, however long it lasts.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  auto other = store->Open(Target(), Kube());
  ASSERT_TRUE(other);
  EXPECT_EQ(CachedConnectionCount(*store), 2);
  EXPECT_TRUE((*later)->CountTrash(prefix_)) << "the old session still works";
}

TEST_F(ConnectTest, CloneFromASessionOfAnotherConnectionIsRefused) {
  auto src = Image("vol", 64 * kMiB);
  ASSERT_TRUE(admin_->Create(src));
  auto r = kube_->Clone(*admin_, src.name, "s", Image("vol-c", 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, EINVAL);
}

TEST_F(ConnectTest, AvailableBytesFollowsTheClusterMgr) {
  // The monitors know pool usage only from a ceph-mgr's reports, and keep the
  // last one when the mgr goes: a mgr map past its first epoch means a mgr
  // has been there.
  std::string mgr = raw_->MonCommand(R"({"prefix":"mgr stat","format":"json"})");
  ASSERT_FALSE(mgr.empty()) << "mgr stat failed";
  auto stat = nlohmann::json::parse(mgr);
  bool mgr_reported = stat.value("available", false) || stat.value("epoch", 0) > 1;
  auto a = kube_->AvailableBytes();
  if (mgr_reported) {
    ASSERT_TRUE(a) << ErrText(a);
    EXPECT_GT(*a, 0u);
    printf("[ note     ] a ceph-mgr reported: pool kube can take %llu more bytes\n",
           static_cast<unsigned long long>(*a));
  } else {
    printf("[ note     ] this cluster never had a ceph-mgr: df lists no pools, AvailableBytes must say so\n");
    ASSERT_FALSE(a) << "a number without a mgr: " << *a;
    EXPECT_EQ(a.error().code, ENODATA) << ErrText(a);
    EXPECT_NE(a.error().message.find("'kube'"), std::string::npos) << a.error().message;
  }
}

TEST(DfParse, ReadsMaxAvailOfTheNamedPool) {
  // The shape of a Pacific monitor's {"prefix":"df","format":"json"} answer.
  std::string df = R"({"stats":{"total_bytes":21474836480,"total_avail_bytes":21000000000},
    "stats_by_class":{},"pools":[
    {"name":"rbd","id":1,"stats":{"stored":0,"objects":0,"kb_used":0,"bytes_used":0,"percent_used":0,"max_avail":111}},
    {"name":"kube","id":2,"stats":{"stored":12,"objects":3,"kb_used":1,"bytes_used":12,"percent_used":0,
     "max_avail":20401094656}}]})";
  auto k = ParseDfMaxAvail(df, "kube");
  ASSERT_TRUE(k) << ErrText(k);
  EXPECT_EQ(*k, 20401094656u);
  EXPECT_EQ(*ParseDfMaxAvail(df, "rbd"), 111u);
  auto missing = ParseDfMaxAvail(df, "other");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENODATA);
  EXPECT_EQ(ParseDfMaxAvail("not json", "kube").error().code, EINVAL);
  EXPECT_EQ(ParseDfMaxAvail(R"({"pools":[{"name":"kube","stats":{}}]})", "kube").error().code, EINVAL);
  EXPECT_EQ(ParseDfMaxAvail(R"({"stats":{}})", "kube").error().code, EINVAL);
}

}  // namespace
}  // namespace rbdnbd::csi::test
