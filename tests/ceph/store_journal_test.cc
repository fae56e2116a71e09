// The name journal (omap) on the real OSD.
#include <latch>
#include <set>
#include <thread>

#include "tests/ceph/ceph_test_env.h"

namespace rbdnbd::csi::test {
namespace {

class JournalTest : public StoreTest {
 protected:
  void TearDown() override {
    // Journal objects are ours too: remove them (keys gone first, as the
    // controller leaves them: 0 keys).
    for (const auto& o : objects_) rados_remove(raw_->io(), o.c_str());
    StoreTest::TearDown();
  }
  std::string Object(const std::string& what) {
    objects_.push_back(Name(what));
    return objects_.back();
  }
  std::vector<std::string> objects_;
};

TEST_F(JournalTest, ReserveStoresOnceAndTellsTheLoserTheWinner) {
  auto obj = Object("journal");
  auto g = kube_->JournalGet(obj, "name/a");
  ASSERT_TRUE(g) << ErrText(g);
  EXPECT_FALSE(*g) << "a missing object is an empty journal";
  auto first = kube_->JournalReserve(obj, "name/a", R"({"uuid":"1"})");
  ASSERT_TRUE(first) << ErrText(first);
  EXPECT_EQ(*first, R"({"uuid":"1"})");
  auto second = kube_->JournalReserve(obj, "name/a", R"({"uuid":"2"})");
  ASSERT_TRUE(second) << ErrText(second);
  EXPECT_EQ(*second, R"({"uuid":"1"})");
  // A new key in an existing object: omap_cmp compares the missing key as "".
  auto other = kube_->JournalReserve(obj, "name/b", R"({"uuid":"3"})");
  ASSERT_TRUE(other) << ErrText(other);
  EXPECT_EQ(*other, R"({"uuid":"3"})");
  EXPECT_EQ(**kube_->JournalGet(obj, "name/a"), R"({"uuid":"1"})");
  EXPECT_FALSE(kube_->JournalReserve(obj, "name/c", "")) << "an empty value would look free";
  EXPECT_EQ(raw_->OmapKeys(obj), 2);
}

TEST_F(JournalTest, EightConcurrentReservationsStoreExactlyOneValue) {
  constexpr int kThreads = 8;
  constexpr int kKeys = 10;
  auto obj = Object("journal-race");
  // Each round races a fresh key; the first round also races the object's creation.
  for (int k = 0; k < kKeys; ++k) {
    std::string key = fmt::format("name/race-{}", k);
    std::vector<std::unique_ptr<CephSession>> sessions;
    for (int i = 0; i < kThreads; ++i) {
      auto s = store_->Open(Target(), Kube());
      ASSERT_TRUE(s) << ErrText(s);
      sessions.push_back(std::move(*s));
    }
    std::vector<std::string> seen(kThreads);
    std::vector<std::string> errors(kThreads);
    std::latch go(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        go.arrive_and_wait();
        auto r = sessions[i]->JournalReserve(obj, key, fmt::format("value-{}", i));
        if (r) seen[i] = *r; else errors[i] = r.error().message;
      });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < kThreads; ++i) ASSERT_EQ(errors[i], "") << "thread " << i;
    std::set<std::string> distinct(seen.begin(), seen.end());
    ASSERT_EQ(distinct.size(), 1u) << "key " << key << ": threads saw different winners";
    auto stored = kube_->JournalGet(obj, key);
    ASSERT_TRUE(stored && *stored);
    EXPECT_EQ(**stored, *distinct.begin());
  }
  auto all = kube_->JournalList(obj, "name/race-", "", 0);
  ASSERT_TRUE(all) << ErrText(all);
  EXPECT_EQ(all->size(), static_cast<size_t>(kKeys));
}

TEST_F(JournalTest, SwapAndRemoveAreGuardedByTheValueTheCallerSaw) {
  auto obj = Object("journal-upd");
  auto missing_obj = kube_->JournalSwap(obj, "name/a", "v", "w");
  ASSERT_FALSE(missing_obj);
  EXPECT_EQ(missing_obj.error().code, ECANCELED);
  ASSERT_TRUE(kube_->JournalRemove(obj, "name/a", "v")) << "removing from a missing object is fine";
  ASSERT_TRUE(kube_->JournalReserve(obj, "name/a", "v1"));
  ASSERT_TRUE(kube_->JournalSwap(obj, "name/a", "v1", "v2"));
  EXPECT_EQ(**kube_->JournalGet(obj, "name/a"), "v2");
  // A caller that saw an older value changes nothing: another one holds it.
  auto stale = kube_->JournalSwap(obj, "name/a", "v1", "v3");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ECANCELED);
  auto prefix = kube_->JournalSwap(obj, "name/a", "v", "v3");  // a prefix of the value is not the value
  ASSERT_FALSE(prefix);
  EXPECT_EQ(prefix.error().code, ECANCELED);
  EXPECT_EQ(**kube_->JournalGet(obj, "name/a"), "v2");
  auto stale_rm = kube_->JournalRemove(obj, "name/a", "v1");
  ASSERT_FALSE(stale_rm);
  EXPECT_EQ(stale_rm.error().code, ECANCELED);
  EXPECT_EQ(**kube_->JournalGet(obj, "name/a"), "v2");
  auto missing_key = kube_->JournalSwap(obj, "name/b", "v", "w");
  ASSERT_FALSE(missing_key);
  EXPECT_EQ(missing_key.error().code, ECANCELED);
  EXPECT_FALSE(*kube_->JournalGet(obj, "name/b")) << "a failed swap must not create the key";
  ASSERT_TRUE(kube_->JournalRemove(obj, "name/a", "v2"));
  ASSERT_TRUE(kube_->JournalRemove(obj, "name/a", "v2")) << "removing a missing key is fine";
  EXPECT_FALSE(*kube_->JournalGet(obj, "name/a"));
  EXPECT_EQ(raw_->OmapKeys(obj), 0) << "the object may stay, with no keys";
  // Removed, the key is free to reserve again.
  EXPECT_EQ(*kube_->JournalReserve(obj, "name/a", "v3"), "v3");
}

TEST_F(JournalTest, OfManyRacingSwapsFromOneValueExactlyOneWins) {
  // Two controllers taking one "creating" record over at once: the OSD lets
  // exactly one of them have it.
  auto obj = Object("journal-swap-race");
  ASSERT_TRUE(kube_->JournalReserve(obj, "name/r", "creating-0"));
  constexpr int kRacers = 6;
  std::vector<std::unique_ptr<CephSession>> sessions;
  for (int i = 0; i < kRacers; ++i) {
    auto s = store_->Open(Target(), Kube());
    ASSERT_TRUE(s) << ErrText(s);
    sessions.push_back(std::move(*s));
  }
  std::latch start(kRacers);
  std::vector<int> codes(kRacers, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRacers; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto r = sessions[i]->JournalSwap(obj, "name/r", "creating-0", fmt::format("creating-{}", i + 1));
      codes[i] = r ? 0 : r.error().code;
    });
  }
  for (auto& t : threads) t.join();
  int winners = 0;
  std::string winner;
  for (int i = 0; i < kRacers; ++i) {
    if (codes[i] == 0) {
      ++winners;
      winner = fmt::format("creating-{}", i + 1);
    } else {
      EXPECT_EQ(codes[i], ECANCELED) << "racer " << i;
    }
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(**kube_->JournalGet(obj, "name/r"), winner);
  ASSERT_TRUE(kube_->JournalRemove(obj, "name/r", winner));
}

TEST_F(JournalTest, ListHonoursPrefixAfterAndMax) {
  auto obj = Object("journal-list");
  for (const char* k : {"a/1", "a/2", "a/3", "a/4", "a/5", "b/1", "ab"}) {
    ASSERT_TRUE(kube_->JournalReserve(obj, k, std::string("v-") + k));
  }
  auto keys = [](const std::vector<std::pair<std::string, std::string>>& v) {
    std::vector<std::string> out;
    for (const auto& [k, val] : v) out.push_back(k);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(keys(*kube_->JournalList(obj, "a/", "", 0)), (V{"a/1", "a/2", "a/3", "a/4", "a/5"}));
  EXPECT_EQ(keys(*kube_->JournalList(obj, "a/", "a/2", 2)), (V{"a/3", "a/4"}));
  EXPECT_EQ(keys(*kube_->JournalList(obj, "a/", "a/5", 10)), V{});
  EXPECT_EQ(keys(*kube_->JournalList(obj, "", "", 0)), (V{"a/1", "a/2", "a/3", "a/4", "a/5", "ab", "b/1"}));
  EXPECT_EQ(keys(*kube_->JournalList(obj, "b/", "a/3", 0)), V{"b/1"}) << "after sorts before the prefix";
  EXPECT_EQ(keys(*kube_->JournalList(obj, "c/", "", 0)), V{});
  EXPECT_EQ((*kube_->JournalList(obj, "b/", "", 1))[0].second, "v-b/1");
  EXPECT_EQ(keys(*kube_->JournalList(Name("no-such-object"), "", "", 0)), V{});
}

TEST_F(JournalTest, ListPagesThroughMoreKeysThanOneOsdReply) {
  auto obj = Object("journal-big");
  // Many keys in one write (the raw way), more than one omap read returns.
  constexpr int kN = 1500;
  std::vector<std::string> ks, vs;
  for (int i = 0; i < kN; ++i) {
    ks.push_back(fmt::format("name/{:05}", i));
    vs.push_back(fmt::format("v{}", i));
  }
  std::vector<const char*> kp, vp;
  std::vector<size_t> kl, vl;
  for (int i = 0; i < kN; ++i) {
    kp.push_back(ks[i].c_str());
    vp.push_back(vs[i].c_str());
    kl.push_back(ks[i].size());
    vl.push_back(vs[i].size());
  }
  rados_write_op_t op = rados_create_write_op();
  rados_write_op_omap_set2(op, kp.data(), vp.data(), kl.data(), vl.data(), kN);
  ASSERT_EQ(rados_write_op_operate2(op, raw_->io(), obj.c_str(), nullptr, 0), 0);
  rados_release_write_op(op);

  auto all = kube_->JournalList(obj, "name/", "", 0);
  ASSERT_TRUE(all) << ErrText(all);
  ASSERT_EQ(all->size(), static_cast<size_t>(kN));
  EXPECT_EQ(all->front().first, "name/00000");
  EXPECT_EQ(all->back().first, "name/01499");
  EXPECT_EQ(all->back().second, "v1499");
  auto some = kube_->JournalList(obj, "name/", "name/00999", 600);
  ASSERT_TRUE(some) << ErrText(some);
  ASSERT_EQ(some->size(), 500u);
  EXPECT_EQ(some->front().first, "name/01000");
  auto capped = kube_->JournalList(obj, "name/", "", 700);
  ASSERT_TRUE(capped);
  EXPECT_EQ(capped->size(), 700u);
  EXPECT_EQ(capped->back().first, "name/00699");
}

}  // namespace
}  // namespace rbdnbd::csi::test
