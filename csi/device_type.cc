#include "csi/device_type.h"

#include <fmt/format.h>

#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

constexpr std::string_view kUblkDevicePrefix = "/dev/ublkb";

std::string NoUpdateSize(const UblkSupport& s) {
  if (!s.features_known) {
    return fmt::format("the ublk driver's features are unknown ({}), so UBLK_F_UPDATE_SIZE cannot be assumed",
                       s.detail.empty() ? "UBLK_U_CMD_GET_FEATURES failed" : s.detail);
  }
  return fmt::format("the kernel's ublk driver lacks UBLK_F_UPDATE_SIZE (online resize, Linux 6.16+; features {:#x})",
                     s.features);
}

}  // namespace

const char* DeviceTypeName(DeviceType type) {
  switch (type) {
    case DeviceType::kUblk: return "ublk";
    case DeviceType::kAuto: return "auto";
    case DeviceType::kNbd: break;
  }
  return "nbd";
}

Result<DeviceType> ParseDeviceType(std::string_view text) {
  if (text.empty() || text == "nbd") return DeviceType::kNbd;
  if (text == "ublk") return DeviceType::kUblk;
  if (text == "auto") return DeviceType::kAuto;
  return Err(kInvalidArgument, "volume_context '{}' must be nbd, ublk or auto, not '{}'", kDeviceTypeKey, text);
}

DeviceType DeviceTypeOfPath(std::string_view device) {
  return device.substr(0, kUblkDevicePrefix.size()) == kUblkDevicePrefix ? DeviceType::kUblk : DeviceType::kNbd;
}

std::string DescribeUblkSupport(const UblkSupport& s) {
  if (!s.driver) return "ublk: not available (" + s.detail + "); deviceType auto maps nbd";
  if (!s.features_known) return "ublk: driver loaded, features unknown (" + s.detail + "); deviceType auto maps nbd";
  return fmt::format("ublk: driver loaded, features {:#x}, online resize (UBLK_F_UPDATE_SIZE) {}; deviceType auto "
                     "maps {}",
                     s.features, s.update_size() ? "yes" : "no", s.update_size() ? "ublk" : "nbd");
}

Result<DeviceChoice> ChooseDeviceType(DeviceType requested, UblkProbe* probe) {
  if (requested == DeviceType::kNbd) return DeviceChoice{DeviceType::kNbd, "deviceType nbd"};
  UblkSupport s = probe != nullptr ? probe->Probe() : UblkSupport{false, false, 0, "no ublk probe on this plugin"};
  if (requested == DeviceType::kUblk) {
    if (!s.driver) {
      return Err(kFailedPrecondition,
                 "the ublk driver is not loaded on this node: modprobe ublk_drv, or use deviceType nbd|auto ({})",
                 s.detail);
    }
    if (s.update_size()) return DeviceChoice{DeviceType::kUblk, "deviceType ublk"};
    return DeviceChoice{DeviceType::kUblk, "deviceType ublk; NodeExpandVolume will fail: " + NoUpdateSize(s), true};
  }
  if (!s.driver) return DeviceChoice{DeviceType::kNbd, "deviceType auto chose nbd: no ublk driver (" + s.detail + ")"};
  if (!s.update_size()) return DeviceChoice{DeviceType::kNbd, "deviceType auto chose nbd: " + NoUpdateSize(s)};
  return DeviceChoice{DeviceType::kUblk,
                      fmt::format("deviceType auto chose ublk: the kernel's ublk has UBLK_F_UPDATE_SIZE (features "
                                  "{:#x})",
                                  s.features)};
}

Result<void> CheckUblkCanGrow(const std::string& device, UblkProbe* probe) {
  UblkSupport s = probe != nullptr ? probe->Probe() : UblkSupport{false, false, 0, "no ublk probe on this plugin"};
  if (s.update_size()) return {};
  return Err(kFailedPrecondition,
             "{} cannot grow online: {}. Unstage and stage the volume again (a new map takes the image's size), "
             "or use deviceType nbd",
             device, s.driver ? NoUpdateSize(s) : "the ublk driver is not loaded (" + s.detail + ")");
}

}  // namespace rbdnbd::csi
