// BlockDevices: the size of a block device, as the kernel sees it now.
//
// Contract: Size("/dev/nbd3") reads /sys/class/block/nbd3/size (512-byte
// sectors; it follows a RECONFIGURE resize at once, without udev), falling
// back to ioctl(BLKGETSIZE64) on the device node. ENOENT when the device is
// gone. Any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"

namespace rbdnbd::csi {

class BlockDevices {
 public:
  virtual ~BlockDevices() = default;
  virtual Result<uint64_t> Size(const std::string& device) = 0;
};

// `sys_class_block`: normally /sys/class/block (tests point it elsewhere).
std::unique_ptr<BlockDevices> MakeSystemBlockDevices(std::string sys_class_block = "/sys/class/block");

}  // namespace rbdnbd::csi
