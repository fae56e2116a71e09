#include "ublk/ublk_control.h"

#include <fcntl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

namespace rbdnbd {
namespace {

constexpr unsigned kRingEntries = 4;

}  // namespace

std::string UblkFlagNames(uint64_t flags) {
  static constexpr struct {
    uint64_t bit;
    const char* name;
  } kNames[] = {
      {UBLK_F_SUPPORT_ZERO_COPY, "UBLK_F_SUPPORT_ZERO_COPY"},
      {UBLK_F_URING_CMD_COMP_IN_TASK, "UBLK_F_URING_CMD_COMP_IN_TASK"},
      {UBLK_F_NEED_GET_DATA, "UBLK_F_NEED_GET_DATA"},
      {UBLK_F_USER_RECOVERY, "UBLK_F_USER_RECOVERY"},
      {UBLK_F_USER_RECOVERY_REISSUE, "UBLK_F_USER_RECOVERY_REISSUE"},
      // Newer than the 6.1 header: spelled out (include/uapi/linux/ublk_cmd.h).
      {1ull << 5, "UBLK_F_UNPRIVILEGED_DEV"},
      {1ull << 6, "UBLK_F_CMD_IOCTL_ENCODE"},
      {1ull << 7, "UBLK_F_USER_COPY"},
      {1ull << 8, "UBLK_F_ZONED"},
      {1ull << 9, "UBLK_F_USER_RECOVERY_FAIL_IO"},
      {kUblkFUpdateSize, "UBLK_F_UPDATE_SIZE"},
  };
  std::string out;
  for (const auto& n : kNames) {
    if (!(flags & n.bit)) continue;
    if (!out.empty()) out += '|';
    out += n.name;
    flags &= ~n.bit;
  }
  if (flags != 0) out += fmt::format("{}{:#x}", out.empty() ? "" : "|", flags);
  return out.empty() ? "0" : out;
}

Result<std::unique_ptr<UblkControl>> UblkControl::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    const int e = errno;
    if (e == ENOENT || e == ENXIO || e == ENODEV) {
      return Err(ENODEV, "no {}: the ublk driver is not loaded (modprobe ublk_drv; "
                 "the kernel needs CONFIG_BLK_DEV_UBLK, Linux 6.0 or later)", path);
    }
    if (e == EACCES || e == EPERM) {
      return Err(e, "opening {}: permission denied (ublk needs root or CAP_SYS_ADMIN)", path);
    }
    return Err(e, "opening {}: {}", path, std::strerror(e));
  }
  std::unique_ptr<UblkControl> c(new UblkControl(std::move(fd)));
  const int r = io_uring_queue_init(kRingEntries, &c->ring_, IORING_SETUP_SQE128);
  if (r < 0) {
    if (r == -EINVAL) {
      return Err(EOPNOTSUPP, "the kernel's io_uring has no IORING_SETUP_SQE128 (ublk needs Linux 6.0 or later)");
    }
    return Err(-r, "io_uring_queue_init for the ublk control ring: {}", std::strerror(-r));
  }
  c->ring_ready_ = true;
  return c;
}

UblkControl::~UblkControl() {
  if (ring_ready_) io_uring_queue_exit(&ring_);
}

int UblkControl::Command(uint32_t op, const ublksrv_ctrl_cmd& cmd) {
  std::lock_guard<std::mutex> lock(mu_);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) return -EBUSY;  // never: one command at a time
  std::memset(sqe, 0, 2 * sizeof(*sqe));  // SQE128: the command area runs into the second half
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd_.get();
  sqe->cmd_op = op;
  static_assert(sizeof(ublksrv_ctrl_cmd) <= 80, "fits the SQE128 command area");
  std::memcpy(sqe->cmd, &cmd, sizeof(cmd));
  int r = io_uring_submit_and_wait(&ring_, 1);
  while (r == -EINTR) r = io_uring_submit_and_wait(&ring_, 1);
  if (r < 0) return r;
  io_uring_cqe* cqe = nullptr;
  r = io_uring_wait_cqe(&ring_, &cqe);
  while (r == -EINTR) r = io_uring_wait_cqe(&ring_, &cqe);
  if (r < 0) return r;
  const int res = cqe->res;
  io_uring_cqe_seen(&ring_, cqe);
  return res;
}

Error UblkCommandError(const char* what, uint32_t dev_id, int res, const std::string& ublks_max_param) {
  const int e = -res;
  const std::string dev = dev_id == kUblkAutoId ? "a new ublk device" : fmt::format("ublk device {}", dev_id);
  auto error = [&](fmt::string_view why) { return Error{e, fmt::format("{} of {}: {}", what, dev, why)}; };
  if (e == EACCES && std::strcmp(what, "ADD_DEV") == 0) {
    // ublk_ctrl_add_dev: EACCES once the devices added reach ublks_max (CAP_SYS_ADMIN missing is
    // EPERM). Since Linux 6.2; later kernels (Debian's 6.12.118 among them) count only
    // UBLK_F_UNPRIVILEGED_DEV devices, which rbd-nbdd never adds, so there it cannot happen.
    std::string max = "?";
    if (std::FILE* f = std::fopen(ublks_max_param.c_str(), "re")) {
      char buf[32] = {};
      if (std::fgets(buf, sizeof(buf), f) != nullptr) max = std::string(buf, std::strcspn(buf, "\n"));
      std::fclose(f);
    }
    return error(fmt::format(
        "the ublk driver's device limit is reached (ublks_max={}): unmap a ublk device, or raise the "
        "limit (echo N > {}, or modprobe ublk_drv ublks_max=N)", max, ublks_max_param));
  }
  switch (e) {
    case EPERM:
    case EACCES:
      return error("permission denied: the ublk driver wants CAP_SYS_ADMIN (run the daemon as root, "
                   "or give it CAP_SYS_ADMIN)");
    case EEXIST:
      return error(fmt::format("the id is in use: /dev/ublkc{} belongs to another ublk server, or to one "
                               "that died leaving it to be recovered (ask for another id, or none to let "
                               "the kernel pick a free one)", dev_id));
    case ENOSPC:
      return error("no free ublk device id (remove a ublk device first)");
    case ENODEV:
      return error("no such ublk device");
    case EOPNOTSUPP:
      return error("the kernel does not support this command (legacy ublk opcodes disabled, or too old "
                   "a driver)");
    default:
      return error(std::strerror(e));
  }
}

Unexpected UblkControl::Fail(const char* what, uint32_t dev_id, int res) {
  return Unexpected(UblkCommandError(what, dev_id, res));
}

Result<ublksrv_ctrl_dev_info> UblkControl::AddDev(const ublksrv_ctrl_dev_info& want) {
  ublksrv_ctrl_dev_info info = want;
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = want.dev_id;
  cmd.queue_id = UINT16_MAX;
  cmd.addr = reinterpret_cast<uint64_t>(&info);
  cmd.len = sizeof(info);
  const int res = Command(UBLK_CMD_ADD_DEV, cmd);
  if (res < 0) {
    if (res == -EINVAL && want.flags != 0) {
      return Err(EINVAL, "ADD_DEV of ublk device: the kernel rejected the request (flags {}: a "
                 "feature this kernel lacks?)", UblkFlagNames(want.flags));
    }
    return Fail("ADD_DEV", want.dev_id, res);
  }
  // Older drivers ignore flags they do not know: every asked feature must be there.
  const uint64_t asked = want.flags & (UBLK_F_USER_RECOVERY | UBLK_F_USER_RECOVERY_REISSUE);
  if ((info.flags & asked) != asked) {
    const uint64_t missing = asked & ~info.flags;
    const uint32_t id = info.dev_id;
    (void)DelDev(id);
    return Err(EOPNOTSUPP, "ublk device {}: the kernel lacks {}", id, UblkFlagNames(missing));
  }
  return info;
}

Result<void> UblkControl::SetParams(uint32_t dev_id, const ublk_params& params) {
  ublk_params p = params;
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  cmd.addr = reinterpret_cast<uint64_t>(&p);
  cmd.len = sizeof(p);
  if (int res = Command(UBLK_CMD_SET_PARAMS, cmd); res < 0) return Fail("SET_PARAMS", dev_id, res);
  return {};
}

Result<void> UblkControl::StartDev(uint32_t dev_id, pid_t daemon_pid) {
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  cmd.data[0] = static_cast<uint64_t>(daemon_pid);
  if (int res = Command(UBLK_CMD_START_DEV, cmd); res < 0) return Fail("START_DEV", dev_id, res);
  return {};
}

Result<void> UblkControl::StopDev(uint32_t dev_id) {
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  if (int res = Command(UBLK_CMD_STOP_DEV, cmd); res < 0) return Fail("STOP_DEV", dev_id, res);
  return {};
}

Result<void> UblkControl::DelDev(uint32_t dev_id) {
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  if (int res = Command(UBLK_CMD_DEL_DEV, cmd); res < 0) return Fail("DEL_DEV", dev_id, res);
  return {};
}

Result<ublksrv_ctrl_dev_info> UblkControl::GetDevInfo(uint32_t dev_id) {
  ublksrv_ctrl_dev_info info{};
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  cmd.addr = reinterpret_cast<uint64_t>(&info);
  cmd.len = sizeof(info);
  if (int res = Command(UBLK_CMD_GET_DEV_INFO, cmd); res < 0) return Fail("GET_DEV_INFO", dev_id, res);
  return info;
}

Result<void> UblkControl::StartUserRecovery(uint32_t dev_id) {
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  if (int res = Command(UBLK_CMD_START_USER_RECOVERY, cmd); res < 0) {
    return Fail("START_USER_RECOVERY", dev_id, res);
  }
  return {};
}

Result<void> UblkControl::EndUserRecovery(uint32_t dev_id, pid_t daemon_pid) {
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  cmd.data[0] = static_cast<uint64_t>(daemon_pid);
  if (int res = Command(UBLK_CMD_END_USER_RECOVERY, cmd); res < 0) {
    return Fail("END_USER_RECOVERY", dev_id, res);
  }
  return {};
}

Result<uint64_t> UblkControl::GetFeatures() {
  uint64_t features = 0;
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = kUblkAutoId;
  cmd.queue_id = UINT16_MAX;
  cmd.addr = reinterpret_cast<uint64_t>(&features);
  cmd.len = sizeof(features);
  if (int res = Command(kUblkCmdGetFeatures, cmd); res < 0) {
    if (res == -EOPNOTSUPP || res == -EINVAL) {
      return Err(EOPNOTSUPP, "the ublk driver has no GET_FEATURES (Linux 6.5 or later has it)");
    }
    return Fail("GET_FEATURES", kUblkAutoId, res);
  }
  return features;
}

Result<void> UblkControl::UpdateSize(uint32_t dev_id, uint64_t bytes) {
  auto features = GetFeatures();
  if (!features || !(*features & kUblkFUpdateSize)) {
    return Err(EOPNOTSUPP, "ublk device {}: this kernel's ublk driver cannot resize a live device "
               "(UBLK_U_CMD_UPDATE_SIZE came with Linux 6.16; {})", dev_id,
               features ? "its features lack UBLK_F_UPDATE_SIZE" : features.error().message);
  }
  ublksrv_ctrl_cmd cmd{};
  cmd.dev_id = dev_id;
  cmd.queue_id = UINT16_MAX;
  cmd.data[0] = bytes >> 9;
  if (int res = Command(kUblkCmdUpdateSize, cmd); res < 0) return Fail("UPDATE_SIZE", dev_id, res);
  return {};
}

}  // namespace rbdnbd
