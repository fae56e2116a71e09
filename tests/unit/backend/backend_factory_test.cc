#include "exports/export_factory.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

#include "backend/fault_backend.h"
#include "test_util.h"

namespace rbdnbd {
namespace {

using testing::LoopThread;

ExportSpec MustParse(std::string_view spec) {
  auto r = ParseExportSpec(spec);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return r ? *r : ExportSpec{};
}

// The whole error message, for exact-substring checks.
std::string ErrorOf(std::string_view spec) {
  auto r = ParseExportSpec(spec);
  EXPECT_FALSE(r.has_value()) << spec;
  if (r) return "";
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "one line";
  return r.error().message;
}

TEST(BackendFactoryTest, MemoryExport) {
  ExportSpec e = MustParse("name=disk0,backend=memory,size=64M");
  EXPECT_EQ(e.name, "disk0");
  EXPECT_EQ(e.description, "memory 64.0 MiB");
  ASSERT_NE(e.backend, nullptr);
  BackendCaps caps = e.backend->Capabilities();
  EXPECT_EQ(caps.size, uint64_t{64} << 20);
  EXPECT_FALSE(caps.read_only);
}

TEST(BackendFactoryTest, ReadOnlyFlagForms) {
  EXPECT_TRUE(MustParse("name=a,backend=memory,size=1M,read-only").backend->Capabilities().read_only);
  EXPECT_TRUE(MustParse("read-only=true,name=a,backend=memory,size=1M").backend->Capabilities().read_only);
  EXPECT_FALSE(MustParse("name=a,backend=memory,size=1M,read-only=false").backend->Capabilities().read_only);
  EXPECT_EQ(MustParse("name=a,backend=memory,size=1M,read-only").description,
            "memory 1.0 MiB (read-only)");
}

TEST(BackendFactoryTest, FileExport) {
  std::string path = testing::TempPath("/tmp", "spec");
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
  ::close(fd);
  ExportSpec e = MustParse("name=f,backend=file,path=" + path + ",direct=off,description=my disk");
  EXPECT_EQ(e.description, "my disk");
  EXPECT_EQ(e.backend->Capabilities().size, uint64_t{1} << 20);
  EXPECT_EQ(e.backend->Capabilities().min_block, 1u) << "direct=off";
  ExportSpec ro = MustParse("name=f,backend=file,read-only,path=" + path);
  EXPECT_TRUE(ro.backend->Capabilities().read_only);
  EXPECT_EQ(ro.description.find("(read-only)"), std::string::npos) << "opened O_RDONLY, no wrapper";
  ::unlink(path.c_str());

  EXPECT_NE(ErrorOf("name=f,backend=file,path=/nonexistent/x")
                .find("export spec 'name=f,backend=file,path=/nonexistent/x': file backend: "
                      "cannot open '/nonexistent/x' read-write: No such file or directory"),
            std::string::npos);
}

TEST(BackendFactoryTest, FaultAndDelayChain) {
  ExportSpec e = MustParse(
      "name=x,backend=memory,size=1M,fault-errno=enospc,fault-ops=write+flush,fault-every=2,"
      "delay-read=1ms,delay=2ms");
  EXPECT_EQ(e.description,
            "memory 1.0 MiB +fault(ENOSPC on write+flush every 2) "
            "+delay(read 1000us, write 2000us, other 2000us)");
  LoopThread lt;
  EXPECT_EQ(lt.Submit(*e.backend, IoType::kFlush, 0, 0), 0);
  EXPECT_EQ(lt.Submit(*e.backend, IoType::kFlush, 0, 0), -ENOSPC);
  EXPECT_EQ(lt.Read(*e.backend, 0, 10), std::vector<uint8_t>(10, 0));

  EXPECT_NE(MustParse("name=x,backend=memory,size=1M,fault-errno=28,fault-rate=50%,"
                      "fault-range=1M-2M,fault-trigger=/tmp/t,fault-ops=all")
                .description.find("+fault(ENOSPC on read+write+flush+trim+write_zeroes+cache "
                                  "rate 0.5 while /tmp/t exists)"),
            std::string::npos);
}

TEST(BackendFactoryTest, ErrorsNameTheKeyAndTheProblem) {
  struct Case {
    const char* spec;
    const char* error;
  };
  const Case cases[] = {
      {"name=a,backend=memory", "export spec 'name=a,backend=memory': size is required for backend=memory"},
      {"name=a,backend=file", "path is required for backend=file"},
      {"backend=memory,size=1M", "name is required"},
      {"name=a,size=1M", "backend is required (memory|file|rbd)"},
      {"name=a,backend=disk", "unknown backend 'disk' (memory|file|rbd)"},
      {"name=a,backend=rbd", "image is required for backend=rbd"},
      {"name=a,backend=rbd,image=noslash", "image: image spec 'noslash' has no pool"},
      {"name=a,backend=rbd,image=rbd/img", "backend=rbd needs a cluster"},
      {"name=a,backend=memory,size=1M,image=rbd/x", "image: not valid for backend=memory (only for backend=rbd)"},
      {"name=a,backend=memory,size=1M,color=red", "unknown key 'color'"},
      {"name=a,backend=memory,size=1M,path=/x", "path: not valid for backend=memory (only for backend=file)"},
      {"name=a,name=b,backend=memory,size=1M", "name: given more than once"},
      {"name=a,backend=memory,size", "size: needs a value (size=...)"},
      {"name=a,backend=memory,size=lots", "size: 'lots' is not a size"},
      {"name=a,backend=memory,size=0", "memory backend: size must be greater than 0"},
      {"name=a,backend=memory,size=32T", "larger than the 16 TiB limit"},
      {"name=,backend=memory,size=1M", "name: must be 1..255 printable ASCII characters"},
      {"name=a\tb,backend=memory,size=1M", "name: must be 1..255"},
      {"name=a,backend=memory,size=1M,read-only=maybe", "read-only: 'maybe' is not true or false"},
      {"name=a,backend=memory,size=1M,,", "empty key in item ''"},
      {"", "empty spec"},
      {"name=a,backend=memory,size=1M,fault-errno=EWHAT", "fault-errno: 'EWHAT' is not an errno name"},
      {"name=a,backend=memory,size=1M,fault-errno=0", "fault-errno: 0 is out of range"},
      {"name=a,backend=memory,size=1M,fault-ops=read+paint", "fault-ops: unknown operation 'paint'"},
      {"name=a,backend=memory,size=1M,fault-rate=2", "fault-rate: '2' is not between 0 and 1"},
      {"name=a,backend=memory,size=1M,fault-rate=x", "fault-rate: 'x' is not a number"},
      {"name=a,backend=memory,size=1M,fault-every=0", "fault-every: 0 is out of range"},
      {"name=a,backend=memory,size=1M,fault-range=2M-1M", "fault-range: '2M-1M' is empty"},
      {"name=a,backend=memory,size=1M,fault-range=5", "fault-range: '5' is not BEGIN-END"},
      {"name=a,backend=memory,size=1M,fault-trigger=", "fault-trigger: empty value"},
      {"name=a,backend=memory,size=1M,delay=10", "delay: '10' needs a number and a unit (us, ms or s)"},
      {"name=a,backend=memory,size=1M,delay-write=5m", "delay-write: '5m' needs a number and a unit"},
      {"name=a,backend=memory,size=1M,delay-read=7200s", "delay-read: '7200s' is not a delay of at most 1 hour"},
      {"name=a,backend=file,path=/tmp,direct=maybe", "direct: 'maybe' is not auto, on or off"},
  };
  for (const Case& c : cases) {
    std::string error = ErrorOf(c.spec);
    EXPECT_NE(error.find(c.error), std::string::npos)
        << "spec: " << c.spec << "\n got: " << error << "\nwant: " << c.error;
    EXPECT_EQ(error.rfind("export spec '", 0), 0u) << error;
  }
  EXPECT_EQ(ParseExportSpec("name=a,backend=rbd").error().code, EINVAL);
}

// backend=rbd against a context whose cluster cannot be reached: what the
// factory does before and after it asks for the connection. (Opening a real
// image, and the decorators around it, is tests/integration/rbd_fault_injection.sh.)
struct FailingCluster {
  int calls = 0;
  ExportContext Context() {
    ExportContext c;
    c.connect = [this]() -> Result<RbdConnection> {
      calls++;
      return Err(ETIMEDOUT, "monitors 127.0.0.1:1 did not answer within 1 s");
    };
    return c;
  }
};

TEST(BackendFactoryTest, RbdTakesEveryDecoratorKeyAndConnectsOnlyAfterTheyAreChecked) {
  FailingCluster cluster;
  auto r = ParseExportSpec(
      "name=vm,backend=rbd,image=rbd/ns/img@snap,read-only,description=d,fault-errno=EIO,fault-ops=write,"
      "fault-trigger=/tmp/t,fault-every=2,fault-rate=1%,fault-range=0-1M,delay=1ms,delay-write=2ms",
      cluster.Context());
  ASSERT_FALSE(r);
  EXPECT_EQ(cluster.calls, 1) << "every key was accepted for backend=rbd";
  EXPECT_EQ(r.error().code, ETIMEDOUT);
  EXPECT_NE(r.error().message.find("did not answer"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.rfind("export spec 'name=vm,", 0), 0u) << r.error().message;

  for (const char* bad : {"name=vm,backend=rbd,image=rbd/img,fault-errno=EWHAT",
                          "name=vm,backend=rbd,image=rbd/img,delay=5",
                          "name=vm,backend=rbd,image=rbd/img,path=/x",
                          "name=vm,backend=rbd,image=rbd/img,size=1G",
                          "name=vm,backend=rbd,image=rbd/img@"}) {
    EXPECT_FALSE(ParseExportSpec(bad, cluster.Context())) << bad;
  }
  EXPECT_EQ(cluster.calls, 1) << "a bad key never waits for the cluster";
}

TEST(BackendFactoryTest, RbdExportIsTheSameExportWithoutASpecString) {
  FailingCluster cluster;
  // Commas are fine here: nothing is split.
  auto r = RbdExport("rbd/img,with,commas", cluster.Context());
  ASSERT_FALSE(r);
  EXPECT_EQ(cluster.calls, 1);
  EXPECT_EQ(r.error().message, "monitors 127.0.0.1:1 did not answer within 1 s") << "no spec prefix";
  auto bad = RbdExport("justanimage", cluster.Context());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("has no pool"), std::string::npos) << bad.error().message;
  EXPECT_EQ(cluster.calls, 1);
  EXPECT_FALSE(RbdExport("rbd/img", ExportContext{}));  // no cluster: refused, not crashed
}

TEST(BackendFactoryTest, LongAndPrintableNames) {
  std::string max_name(255, 'n');
  EXPECT_EQ(MustParse("name=" + max_name + ",backend=memory,size=4K").name, max_name);
  EXPECT_NE(ErrorOf("name=" + max_name + "n,backend=memory,size=4K").find("name: must be"),
            std::string::npos);
  EXPECT_EQ(MustParse("name=my disk/0:a=b,backend=memory,size=4K").name, "my disk/0:a=b");
}

}  // namespace
}  // namespace rbdnbd
