#include "fakes.h"

#include "csi/csi_error.h"

namespace rbdnbd::csi::testing {

Result<std::optional<MountEntry>> FakeMounter::MountAt(const std::string& path) {
  return FindMount(table, CanonicalPath(path));
}

Result<void> FakeMounter::Mount(const std::string& source, const std::string& target, const std::string& fs_type,
                                const std::vector<std::string>& options) {
  if (fail_mount != 0) return Err(fail_mount, "fake mount failure");
  ++mounts;
  mount_options.push_back(options);
  MountEntry e;
  e.id = static_cast<int>(table.size()) + 100;
  e.root = "/";
  e.mount_point = CanonicalPath(target);
  e.fs_type = fs_type;
  e.source = source;
  e.options = "rw";
  for (const auto& o : options) {
    if (o == "ro") e.options = "ro";
  }
  table.push_back(e);
  return {};
}

Result<void> FakeMounter::BindMount(const std::string& source, const std::string& target, bool read_only) {
  ++binds;
  MountEntry e;
  e.id = static_cast<int>(table.size()) + 100;
  e.mount_point = CanonicalPath(target);
  e.options = read_only ? "ro" : "rw";
  if (auto m = FindMount(table, CanonicalPath(source)); m.has_value()) {
    e.source = m->source;  // a bind of a mount shows the filesystem's source
    e.fs_type = m->fs_type;
    e.root = "/";
  } else {
    e.source = "udev";  // a bind of a device node lives on devtmpfs
    e.fs_type = "devtmpfs";
    e.root = "/" + source.substr(source.rfind('/') + 1);
  }
  table.push_back(e);
  return {};
}

Result<void> FakeMounter::Unmount(const std::string& target) {
  if (fail_unmount != 0) return Err(fail_unmount, "fake umount failure");
  std::string path = CanonicalPath(target);
  for (size_t i = table.size(); i-- > 0;) {
    if (table[i].mount_point == path) {
      table.erase(table.begin() + static_cast<std::ptrdiff_t>(i));
      ++unmounts;
    }
  }
  return {};
}

Result<DeviceProbe> FakeFsTools::Probe(const std::string& device) {
  auto it = probes.find(device);
  if (it == probes.end()) return DeviceProbe{true, "", ""};
  return it->second;
}

Result<void> FakeFsTools::MakeFs(const std::string& device, const std::string& fs_type,
                                 const std::vector<std::string>& options) {
  if (fail_mkfs != 0) return Err(fail_mkfs, "fake mkfs failure");
  mkfs_options = options;
  made.push_back(device + ":" + fs_type);
  probes[device] = DeviceProbe{false, fs_type, ""};
  return {};
}

Result<void> FakeFsTools::Check(const std::string& device) {
  if (fail_check != 0) return Err(fail_check, "fake fsck failure");
  checked.push_back(device);
  return {};
}

Result<void> FakeFsTools::Grow(const std::string& device, const std::string& mount_point, const std::string& fs_type) {
  grown.push_back(device + ":" + mount_point + ":" + fs_type);
  return {};
}

Result<uint64_t> FakeBlockDevices::Size(const std::string& device) {
  ++calls;
  if (on_size) on_size(this);
  auto it = sizes.find(device);
  if (it == sizes.end()) return Err(ENOENT, "no device {}", device);
  return it->second;
}

Result<DaemonStatus> FakeDaemonClient::Status() {
  std::lock_guard lock(mu);
  if (unreachable) return Err(kUnavailable, "rbd-nbdd daemon unreachable at {}", socket_);
  DaemonStatus s;
  s.devices = devices;
  s.nbd_driver = true;
  return s;
}

Result<MapResult> FakeDaemonClient::Map(const VolumeParams& params, bool read_only) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu);
    hook = on_map;
  }
  if (hook) hook();
  std::lock_guard lock(mu);
  if (unreachable) return Err(kUnavailable, "rbd-nbdd daemon unreachable at {}", socket_);
  if (fail_map != 0) return Err(fail_map, "rbd-nbdd map: fake failure");
  for (const auto& d : devices) {
    if (d.spec == params.spec) return Err(EEXIST, "{} is already mapped at {}", d.spec, d.device);
  }
  ++maps;
  last_read_only = read_only;
  last_key = params.key.reveal();
  if (params.device_type == DeviceType::kAuto) return Err(EINVAL, "fake daemon: deviceType auto reached Map()");
  last_device_type = BuildMapRequest(params, read_only).device_type;
  std::string prefix = last_device_type == "ublk" && !ignores_device_type ? "/dev/ublkb" : "/dev/nbd";
  MappedDevice d{prefix + std::to_string(maps - 1), params.spec, "cookie-" + std::to_string(maps), 1 << 30,
                 read_only};
  devices.push_back(d);
  return MapResult{d.device, d.cookie};
}

Result<void> FakeDaemonClient::Unmap(const std::string& target) {
  std::lock_guard lock(mu);
  if (fail_unmap != 0) return Err(fail_unmap, "rbd-nbdd unmap: fake failure");
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].device == target || devices[i].spec == target) {
      devices.erase(devices.begin() + static_cast<std::ptrdiff_t>(i));
      ++unmaps;
      return {};
    }
  }
  return Err(ENOENT, "{} is not mapped by this daemon", target);
}

}  // namespace rbdnbd::csi::testing
