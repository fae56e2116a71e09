// DeviceType: which kernel block frontend stages a volume, /dev/nbdN or
// /dev/ublkbN, from the volume_context key `deviceType` (nbd|ublk|auto).
//
//   requested   /dev/ublk-control   kernel ublk features        chosen
//   ---------   -----------------   -------------------------   ------------------------------
//   nbd         (not looked at)                                  nbd
//   ublk        missing                                          FAILED_PRECONDITION (modprobe)
//   ublk        present             (not needed to map)          ublk
//   auto        missing                                          nbd  (reason logged)
//   auto        present             no UBLK_F_UPDATE_SIZE        nbd  (reason logged)
//   auto        present             UBLK_F_UPDATE_SIZE           ublk
//
// Why auto asks for UPDATE_SIZE: any volume may be expanded later
// (NodeExpandVolume), and a ublk device only follows its image's new size
// where the kernel has UBLK_U_CMD_UPDATE_SIZE (Linux 6.16+; Debian 12's 6.12
// lacks it). nbd always follows a resize (RECONFIGURE), so auto never picks a
// device that could not be expanded online.
//
// Contract: parsing and the choice are pure apart from the UblkProbe they are
// given; the probe is an interface so the choice is unit-tested without a
// kernel (ublk_probe.h has the kernel's). Any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

namespace rbdnbd::csi {

enum class DeviceType { kNbd, kUblk, kAuto };

inline constexpr const char* kDeviceTypeKey = "deviceType";

// "nbd", "ublk" or "auto".
const char* DeviceTypeName(DeviceType type);
// `deviceType` as volume_context gives it: "" (absent) is nbd; anything but
// nbd, ublk or auto is kInvalidArgument naming the key and the allowed values.
Result<DeviceType> ParseDeviceType(std::string_view text);
// The type of a mapped device by its node: /dev/ublkbN is ublk, any other nbd.
DeviceType DeviceTypeOfPath(std::string_view device);

// UBLK_F_UPDATE_SIZE (uapi <linux/ublk_cmd.h> since 6.16; the build host's
// headers may predate it, so it is spelled out here).
inline constexpr uint64_t kUblkFeatureUpdateSize = 1ULL << 10;

// What the node's kernel offers for ublk.
struct UblkSupport {
  bool driver = false;          // the control device exists (ublk_drv is loaded)
  bool features_known = false;  // the driver answered UBLK_U_CMD_GET_FEATURES (6.5+)
  uint64_t features = 0;        // UBLK_F_* bits, when known
  std::string detail;           // why the driver or its features are not known

  bool update_size() const { return features_known && (features & kUblkFeatureUpdateSize) != 0; }
};

// One line for the log: "ublk: driver loaded, features 0x..., online resize
// (UBLK_F_UPDATE_SIZE) yes", or why not.
std::string DescribeUblkSupport(const UblkSupport& support);

class UblkProbe {
 public:
  virtual ~UblkProbe() = default;
  // Never fails: what cannot be learned is reported as absent, with `detail`.
  virtual UblkSupport Probe() = 0;
};

struct DeviceChoice {
  DeviceType type = DeviceType::kNbd;  // kNbd or kUblk, never kAuto
  std::string reason;                  // why (for the log), for auto
  bool warn = false;                   // ublk asked for where online expansion will fail
};

// The table above. `probe` may be null: no ublk driver known.
Result<DeviceChoice> ChooseDeviceType(DeviceType requested, UblkProbe* probe);

// NodeExpandVolume on a ublk device that is smaller than asked: OK where the
// kernel can resize ublk devices, else kFailedPrecondition naming the missing
// feature and the way out (unstage and stage again, or use nbd).
Result<void> CheckUblkCanGrow(const std::string& device, UblkProbe* probe);

}  // namespace rbdnbd::csi
