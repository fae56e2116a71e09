#include "csi/block_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include "common/unique_fd.h"

namespace rbdnbd::csi {

namespace {

class SystemBlockDevices final : public BlockDevices {
 public:
  explicit SystemBlockDevices(std::string sys) : sys_(std::move(sys)) {}

  Result<uint64_t> Size(const std::string& device) override {
    std::string name = device.substr(device.rfind('/') + 1);
    std::ifstream in(sys_ + "/" + name + "/size");
    std::string text;
    if (in && std::getline(in, text)) {
      uint64_t sectors = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), sectors);
      if (ec == std::errc()) return sectors * 512;
    }
    UniqueFd fd(::open(device.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return Err(errno, "open {}: {}", device, strerror(errno));
    uint64_t bytes = 0;
    if (::ioctl(fd.get(), BLKGETSIZE64, &bytes) != 0) return Err(errno, "BLKGETSIZE64 {}: {}", device, strerror(errno));
    return bytes;
  }

 private:
  std::string sys_;
};

}  // namespace

std::unique_ptr<BlockDevices> MakeSystemBlockDevices(std::string sys_class_block) {
  return std::make_unique<SystemBlockDevices>(std::move(sys_class_block));
}

}  // namespace rbdnbd::csi
