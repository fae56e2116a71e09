// FsQuiescer with a fake Freezer and a fake mountinfo, and RunHook /
// HookQuiescer with real scripts (no root needed).
#include "control/quiesce_freezer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <algorithm>
#include <mutex>
#include <sstream>
#include <thread>

#include "control/quiesce_hook.h"

namespace rbdnbd {
namespace {

using namespace std::chrono_literals;

class FakeFreezer final : public Freezer {
 public:
  int Freeze(const std::string& mp) override {
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard lock(mu);
      log.push_back("freeze " + mp);
      if (auto it = freeze_delay.find(mp); it != freeze_delay.end()) delay = it->second;
    }
    std::this_thread::sleep_for(delay);
    std::lock_guard lock(mu);
    if (auto it = freeze_error.find(mp); it != freeze_error.end()) return it->second;
    frozen.insert(mp);
    return 0;
  }
  int Thaw(const std::string& mp) override {
    std::lock_guard lock(mu);
    log.push_back("thaw " + mp);
    return frozen.erase(mp) ? 0 : -EINVAL;
  }
  std::vector<std::string> Log() {
    std::lock_guard lock(mu);
    return log;
  }
  size_t FrozenCount() {
    std::lock_guard lock(mu);
    return frozen.size();
  }
  std::mutex mu;
  std::vector<std::string> log;
  std::set<std::string> frozen;
  std::map<std::string, int> freeze_error;
  std::map<std::string, std::chrono::milliseconds> freeze_delay;
};

constexpr const char* kMounts =
    "40 22 43:0 / /staging/pv1 rw - ext4 /dev/nbd0 rw\n"
    "41 22 43:0 / /pods/a/pv1 rw - ext4 /dev/nbd0 rw\n"
    "42 22 43:1 / /staging/part1 rw - ext4 /dev/nbd0p1 rw\n"
    "43 22 43:32 / /staging/other rw - ext4 /dev/nbd1 rw\n";

class FsQuiescerTest : public ::testing::Test {
 protected:
  std::unique_ptr<FsQuiescer> Make(std::vector<DeviceNumber> numbers) {
    FsQuiescerSources s;
    s.mountinfo = [this]() -> Result<std::string> { return mountinfo_; };
    s.device_numbers = [numbers]() -> Result<std::vector<DeviceNumber>> { return numbers; };
    s.freezer = freezer_;
    return std::make_unique<FsQuiescer>("/dev/nbd0", "rbd/img", s);
  }
  std::string mountinfo_ = kMounts;
  std::shared_ptr<FakeFreezer> freezer_ = std::make_shared<FakeFreezer>();
};

TEST_F(FsQuiescerTest, FreezesEachFilesystemOfTheDeviceOnceAndThawsInReverse) {
  auto q = Make({{43, 0}, {43, 1}});
  ASSERT_EQ(q->Quiesce(QuiesceClock::now() + 5s), 0);
  EXPECT_EQ(freezer_->Log(), (std::vector<std::string>{"freeze /staging/pv1", "freeze /staging/part1"}));
  q->Unquiesce();
  EXPECT_EQ(freezer_->Log(), (std::vector<std::string>{"freeze /staging/pv1", "freeze /staging/part1",
                                                       "thaw /staging/part1", "thaw /staging/pv1"}));
  EXPECT_EQ(freezer_->FrozenCount(), 0u);
}

TEST_F(FsQuiescerTest, NothingMountedIsASuccessWithNothingFrozen) {
  auto q = Make({{43, 64}});
  EXPECT_EQ(q->Quiesce(QuiesceClock::now() + 5s), 0);
  q->Unquiesce();
  EXPECT_TRUE(freezer_->Log().empty());
}

TEST_F(FsQuiescerTest, AFreezeFailureThawsWhatWasFrozenAndReturnsTheErrno) {
  freezer_->freeze_error["/staging/part1"] = -EOPNOTSUPP;
  auto q = Make({{43, 0}, {43, 1}});
  EXPECT_EQ(q->Quiesce(QuiesceClock::now() + 5s), -EOPNOTSUPP);
  EXPECT_EQ(freezer_->Log(), (std::vector<std::string>{"freeze /staging/pv1", "freeze /staging/part1",
                                                       "thaw /staging/pv1"}));
  EXPECT_EQ(freezer_->FrozenCount(), 0u);
  q->Unquiesce();  // nothing left to thaw
  EXPECT_EQ(freezer_->Log().size(), 3u);
}

TEST_F(FsQuiescerTest, AFreezePastTheDeadlineFailsWithEtimedoutAndIsThawedWhenItEnds) {
  freezer_->freeze_delay["/staging/part1"] = 600ms;
  auto q = Make({{43, 0}, {43, 1}});
  auto start = QuiesceClock::now();
  EXPECT_EQ(q->Quiesce(start + 200ms), -ETIMEDOUT);
  EXPECT_LT(QuiesceClock::now() - start, 500ms);  // did not wait for the stuck freeze
  // The first one is thawed at once; the late one when its freeze returns.
  EXPECT_TRUE(q->Drain(QuiesceClock::now() + 5s));
  EXPECT_EQ(freezer_->FrozenCount(), 0u);
  auto log = freezer_->Log();
  EXPECT_EQ(std::count(log.begin(), log.end(), "thaw /staging/part1"), 1);
  EXPECT_EQ(std::count(log.begin(), log.end(), "thaw /staging/pv1"), 1);
}

TEST_F(FsQuiescerTest, ANewQuiesceWhileAnOldFreezeIsStuckIsRefusedWithEbusy) {
  freezer_->freeze_delay["/staging/pv1"] = 500ms;
  auto q = Make({{43, 0}});
  EXPECT_EQ(q->Quiesce(QuiesceClock::now() + 50ms), -ETIMEDOUT);
  EXPECT_EQ(q->Quiesce(QuiesceClock::now() + 50ms), -EBUSY);
  EXPECT_TRUE(q->Drain(QuiesceClock::now() + 5s));
  EXPECT_EQ(freezer_->FrozenCount(), 0u);
  freezer_->freeze_delay.clear();
  EXPECT_EQ(q->Quiesce(QuiesceClock::now() + 5s), 0);  // and works again after
  q->Unquiesce();
  EXPECT_EQ(freezer_->FrozenCount(), 0u);
}

TEST_F(FsQuiescerTest, AnUnreadableMountTableFailsTheQuiesce) {
  FsQuiescerSources s;
  s.mountinfo = []() -> Result<std::string> { return Err(EACCES, "no"); };
  s.device_numbers = []() -> Result<std::vector<DeviceNumber>> { return std::vector<DeviceNumber>{{43, 0}}; };
  s.freezer = freezer_;
  FsQuiescer q("/dev/nbd0", "rbd/img", s);
  EXPECT_EQ(q.Quiesce(QuiesceClock::now() + 1s), -EACCES);
}

// --- hooks: real processes -------------------------------------------------

class HookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rbdnbd-hook-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string Script(const std::string& name, const std::string& body) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    return path;
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::string dir_;
};

TEST_F(HookTest, RunsWithArgvAndOnlyPathInItsEnvironment) {
  ::setenv("RBDNBD_TEST_SECRET", "s3cret", 1);
  auto hook = Script("h", "echo \"$#:$1:$2\" > " + dir_ + "/args; env > " + dir_ + "/env; echo hello");
  HookResult r = RunHook(hook, {"/dev/nbd3", "quiesce"}, 5s);
  ::unsetenv("RBDNBD_TEST_SECRET");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "hello");
  EXPECT_EQ(Read("args"), "2:/dev/nbd3:quiesce\n");
  std::string env = Read("env");
  EXPECT_EQ(env.find("s3cret"), std::string::npos);
  EXPECT_NE(env.find("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), std::string::npos);
}

TEST_F(HookTest, ANonZeroExitIsEioWithTheExitCodeAndOutput) {
  auto hook = Script("h", "echo refused >&2; exit 3");
  HookResult r = RunHook(hook, {"-", "quiesce"}, 5s);
  EXPECT_EQ(r.status, -EIO);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "refused");
  EXPECT_NE(DescribeHookResult(r).find("exit 3"), std::string::npos);
}

TEST_F(HookTest, AHangingHookIsKilledWithItsChildrenAtTheBound) {
  auto hook = Script("h", "sleep 100 & echo $! > " + dir_ + "/child; wait");
  auto start = std::chrono::steady_clock::now();
  HookResult r = RunHook(hook, {"-", "quiesce"}, 300ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, -ETIMEDOUT);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s);
  // The sleep in its process group is gone too (or a zombie reaped by init).
  std::string child = Read("child");
  ASSERT_FALSE(child.empty());
  pid_t pid = std::stoi(child);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; i++) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string s;
    std::getline(stat, s);
    gone = s.empty() || s.find(") Z") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone) << "the hook's child " << pid << " survived the kill";
}

TEST_F(HookTest, AMissingHookIsItsSpawnErrno) {
  HookResult r = RunHook(dir_ + "/missing", {"-", "quiesce"}, 1s);
  EXPECT_EQ(r.status, -ENOENT);
  EXPECT_FALSE(CheckQuiesceHook(dir_ + "/missing").has_value());
  EXPECT_FALSE(CheckQuiesceHook("relative/hook").has_value());
  EXPECT_TRUE(CheckQuiesceHook(Script("ok", "exit 0")).has_value());
}

TEST_F(HookTest, HookQuiescerRunsQuiesceThenUnquiesceAndUndoesAFailedQuiesce) {
  auto ok = Script("ok", "echo \"$1 $2\" >> " + dir_ + "/calls");
  HookQuiescer good(ok, "/dev/nbd3", "rbd/img", 5s);
  EXPECT_EQ(good.Quiesce(QuiesceClock::now() + 5s), 0);
  good.Unquiesce();
  EXPECT_EQ(Read("calls"), "/dev/nbd3 quiesce\n/dev/nbd3 unquiesce\n");

  auto bad = Script("bad", "echo \"$1 $2\" >> " + dir_ + "/bad-calls; [ \"$2\" = unquiesce ]");
  HookQuiescer failing(bad, "-", "rbd/img", 5s);
  EXPECT_EQ(failing.Quiesce(QuiesceClock::now() + 5s), -EIO);
  EXPECT_EQ(Read("bad-calls"), "- quiesce\n- unquiesce\n");
}

TEST_F(HookTest, HookQuiescerPastItsDeadlineIsEtimedout) {
  auto slow = Script("slow", "[ \"$2\" = quiesce ] && sleep 100; exit 0");
  HookQuiescer q(slow, "-", "rbd/img", 5s);
  auto start = QuiesceClock::now();
  EXPECT_EQ(q.Quiesce(start + 300ms), -ETIMEDOUT);
  EXPECT_LT(QuiesceClock::now() - start, 3s);
}

}  // namespace
}  // namespace rbdnbd
