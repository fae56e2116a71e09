#include "csi/ublk_probe.h"

#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/ublk_cmd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace rbdnbd::csi {

namespace {

// _IOR('u', 0x13, struct ublksrv_ctrl_cmd): only the ioctl-encoded opcode
// exists (Linux 6.5+); the build host's <linux/ublk_cmd.h> may predate it.
constexpr uint32_t kGetFeatures = _IOR('u', 0x13, struct ublksrv_ctrl_cmd);
static_assert(kGetFeatures == 0x80207513U);
static_assert(sizeof(ublksrv_ctrl_cmd) == 32);
constexpr size_t kSqeCmdOffset = offsetof(io_uring_sqe, addr3);  // sqe->cmd: 80 bytes with SQE128

// One mmap, unmapped on scope exit.
class Mapping {
 public:
  Mapping(int fd, size_t length, off_t offset)
      : length_(length),
        addr_(::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset)) {}
  ~Mapping() {
    if (ok()) ::munmap(addr_, length_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool ok() const { return addr_ != MAP_FAILED; }
  template <typename T>
  T* at(uint32_t offset) const {
    return reinterpret_cast<T*>(static_cast<char*>(addr_) + offset);
  }

 private:
  size_t length_;
  void* addr_;
};

std::string Errno(const char* what, int e) { return fmt::format("{}: {}", what, strerror(e)); }

// Runs one URING_CMD on `control` and returns its CQE's res (0 or -errno), or
// -errno of the ring set-up (with `*step` naming the step that failed).
int RunCommand(int control, uint32_t op, const ublksrv_ctrl_cmd& cmd, const char** step) {
  io_uring_params params{};
  params.flags = IORING_SETUP_SQE128;
  *step = "io_uring_setup";
  UniqueFd ring(static_cast<int>(::syscall(__NR_io_uring_setup, 2, &params)));
  if (!ring) return -errno;
  if ((params.features & IORING_FEAT_SINGLE_MMAP) == 0) return -EOPNOTSUPP;  // before 5.4: no ublk either
  *step = "mmap of the io_uring";
  size_t sq_bytes = params.sq_off.array + params.sq_entries * sizeof(uint32_t);
  size_t cq_bytes = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
  Mapping rings(ring.get(), std::max(sq_bytes, cq_bytes), IORING_OFF_SQ_RING);
  Mapping sqes(ring.get(), params.sq_entries * 2 * sizeof(io_uring_sqe), static_cast<off_t>(IORING_OFF_SQES));
  if (!rings.ok() || !sqes.ok()) return -errno;

  auto* sqe = sqes.at<io_uring_sqe>(0);
  std::memset(sqe, 0, 2 * sizeof(io_uring_sqe));
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = control;
  sqe->cmd_op = op;
  std::memcpy(reinterpret_cast<char*>(sqe) + kSqeCmdOffset, &cmd, sizeof(cmd));
  uint32_t mask = *rings.at<uint32_t>(params.sq_off.ring_mask);
  uint32_t tail = *rings.at<uint32_t>(params.sq_off.tail);
  rings.at<uint32_t>(params.sq_off.array)[tail & mask] = 0;
  std::atomic_ref<uint32_t>(*rings.at<uint32_t>(params.sq_off.tail)).store(tail + 1, std::memory_order_release);

  *step = "io_uring_enter";
  for (;;) {
    long n = ::syscall(__NR_io_uring_enter, ring.get(), 1, 1, IORING_ENTER_GETEVENTS, nullptr, 0);
    if (n >= 0) break;
    if (errno != EINTR) return -errno;
  }
  uint32_t head = std::atomic_ref<uint32_t>(*rings.at<uint32_t>(params.cq_off.head)).load(std::memory_order_acquire);
  uint32_t cq_tail =
      std::atomic_ref<uint32_t>(*rings.at<uint32_t>(params.cq_off.tail)).load(std::memory_order_acquire);
  if (head == cq_tail) return -EAGAIN;
  uint32_t cq_mask = *rings.at<uint32_t>(params.cq_off.ring_mask);
  *step = "UBLK_U_CMD_GET_FEATURES";
  return rings.at<io_uring_cqe>(params.cq_off.cqes)[head & cq_mask].res;
}

class KernelUblkProbe final : public UblkProbe {
 public:
  explicit KernelUblkProbe(std::string path) : path_(std::move(path)) {}

  UblkSupport Probe() override {
    UblkSupport s;
    UniqueFd control(::open(path_.c_str(), O_RDWR | O_CLOEXEC));
    if (!control) {
      int e = errno;
      s.driver = e != ENOENT && e != ENODEV && e != ENXIO;
      s.detail = s.driver ? Errno(path_.c_str(), e) : path_ + " does not exist: ublk_drv is not loaded";
      if (s.driver) s.detail += " (the plugin cannot ask the driver what it supports)";
      return s;
    }
    s.driver = true;
    uint64_t features = 0;
    ublksrv_ctrl_cmd cmd{};
    cmd.dev_id = UINT32_MAX;
    cmd.queue_id = UINT16_MAX;
    cmd.len = sizeof(features);
    cmd.addr = reinterpret_cast<uint64_t>(&features);
    const char* step = "";
    int res = RunCommand(control.get(), kGetFeatures, cmd, &step);
    if (res < 0) {
      s.detail = Errno(step, -res);
      s.detail += " (UBLK_U_CMD_GET_FEATURES needs Linux 6.5+)";
      return s;
    }
    s.features_known = true;
    s.features = features;
    return s;
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<UblkProbe> MakeKernelUblkProbe(std::string control_path) {
  return std::make_unique<KernelUblkProbe>(std::move(control_path));
}

}  // namespace rbdnbd::csi
