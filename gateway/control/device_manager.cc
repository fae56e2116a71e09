#include "control/device_manager.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "control/kernel_keyring.h"

namespace rbdnbd {

std::string NewCookie() {
  uint8_t b[16];
  if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
    for (auto& x : b) x = static_cast<uint8_t>(rand());
  }
  return fmt::format("rbd-nbdd-{:02x}", fmt::join(b, ""));
}

namespace {
std::string KeyringDescription(const std::string& cookie) { return "rbd-nbdd:" + cookie; }
std::string PassphraseDescription(const std::string& cookie) { return "rbd-nbdd-luks:" + cookie; }

// Parks a secret that a map request handed over in memory in the kernel
// keyring, for the daemon that reattaches after a restart.
void Park(uint32_t index, const std::string& description, const Secret& secret) {
  if (auto k = StoreKernelKey(description, secret); !k) {
    spdlog::warn("/dev/nbd{}: {}; it will not survive a daemon restart", index, k.error().message);
  }
}

// Drops what Map() parked for this device.
void ForgetParkedSecrets(const DeviceRecord& r) {
  if (r.key_in_memory) ForgetKernelKey(KeyringDescription(r.cookie));
  if (r.passphrase_in_memory) ForgetKernelKey(PassphraseDescription(r.cookie));
}

}  // namespace

DeviceManager::DeviceManager(std::unique_ptr<NbdNetlink> nl, LoopPool& loops, StateStore store,
                             std::function<void()> on_image_update)
    : nl_(std::move(nl)), loops_(loops), store_(std::move(store)), on_image_update_(std::move(on_image_update)) {}

DeviceManager::~DeviceManager() = default;

Result<std::shared_ptr<RbdBackend>> DeviceManager::OpenBackend(const DeviceRecord& r, ClusterOptions cluster,
                                                               RbdOpenOptions image) {
  auto spec = ParseImageSpec(r.spec);
  if (!spec) return Unexpected(spec.error());
  image.spec = *spec;
  if (!r.keyfile_path.empty() && cluster.key.empty()) {
    auto key = ReadSecretFile(r.keyfile_path, "key file");
    if (!key) return Unexpected(key.error());
    cluster.key = std::move(key).value();
  }
  if (image.encryption != EncryptionFormat::kNone && image.passphrase.empty()) {
    auto pass = ReadSecretFile(r.passphrase_file, "passphrase file");
    if (!pass) return Unexpected(pass.error());
    image.passphrase = std::move(pass).value();
  }
  auto c = clusters_.Get(cluster);
  if (!c) return Unexpected(c.error());
  auto b = RbdBackend::Open(*c, image);
  if (!b) return Unexpected(b.error());
  (*b)->SetUpdateListener(on_image_update_);
  return b;
}

MappedInfo DeviceManager::InfoOf(const Entry& e) {
  MappedInfo info;
  info.record = e.record;
  info.device = e.device->path();
  info.live_connections = e.device->live_connections();
  info.size = e.device->size();
  return info;
}

Result<void> DeviceManager::SaveLocked() {
  std::vector<DeviceRecord> records;
  for (const auto& [index, e] : devices_) records.push_back(e.record);
  return store_.Save(records);
}

Result<MappedInfo> DeviceManager::Map(MapRequest req) {
  std::lock_guard lock(mu_);
  auto spec = ParseImageSpec(req.spec);
  if (!spec) return Unexpected(spec.error());
  for (const auto& [index, e] : devices_) {
    if (e.record.spec == spec->ToString()) {
      return Err(EEXIST, "{} is already mapped at /dev/nbd{}", e.record.spec, index);
    }
  }
  if (req.device.index && devices_.count(*req.device.index)) {
    return Err(EBUSY, "/dev/nbd{} is already in use by {}", *req.device.index, devices_[*req.device.index].record.spec);
  }
  if (req.device.cookie.empty()) req.device.cookie = NewCookie();
  DeviceRecord r = RecordForMap(req, *spec);

  auto backend = OpenBackend(r, req.cluster, req.image);
  if (!backend) return Unexpected(backend.error());
  req.device.on_lost = on_image_update_;
  r.client_addr = (*backend)->cluster()->Address();
  auto dev = KernelDevice::Map(nl_.get(), loops_, Export{r.spec, "", *backend}, req.device);
  if (!dev) return Unexpected(dev.error());
  r.index = (*dev)->index();
  if (r.key_in_memory) Park(r.index, KeyringDescription(r.cookie), req.cluster.key);
  if (r.passphrase_in_memory) Park(r.index, PassphraseDescription(r.cookie), req.image.passphrase);
  Entry& e = devices_[r.index];
  e.record = r;
  e.backend = *backend;
  e.device = std::move(dev).value();
  if (auto s = SaveLocked(); !s) {
    (void)e.device->Unmap(nl_.get());
    devices_.erase(r.index);
    ForgetParkedSecrets(r);
    return Unexpected(s.error());
  }
  spdlog::info("mapped {} at /dev/nbd{} ({} connection(s), cookie {})", r.spec, r.index, r.connections, r.cookie);
  return InfoOf(e);
}

DeviceManager::Entry* DeviceManager::Find(const std::string& target) {
  for (auto& [index, e] : devices_) {
    if (e.device->path() == target || e.record.spec == target || std::to_string(index) == target) return &e;
  }
  return nullptr;
}

Result<void> DeviceManager::Unmap(const std::string& target, bool force) {
  std::lock_guard lock(mu_);
  Entry* e = Find(target);
  if (e == nullptr) return Err(ENOENT, "{} is not mapped by this daemon", target);
  std::string path = e->device->path();
  if (!force) {
    // O_EXCL on a block device fails with EBUSY while it is mounted or held.
    UniqueFd probe(::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC));
    if (!probe && errno == EBUSY) {
      return Err(EBUSY, "{} is in use (mounted or held open); unmount it first, or use --force", path);
    }
  }
  if (auto r = e->device->Unmap(nl_.get()); !r) return r;
  DeviceRecord record = e->record;
  devices_.erase(record.index);
  ForgetParkedSecrets(record);
  spdlog::info("unmapped {} from {}", record.spec, path);
  return SaveLocked();
}

Result<MappedInfo> DeviceManager::AttachLocked(const DeviceRecord& r) {
  if (!nl_) return Err(ENOTSUP, "reattaching /dev/nbd{} needs the nbd netlink interface", r.index);
  if (devices_.count(r.index)) return Err(EBUSY, "/dev/nbd{} is already attached", r.index);
  ClusterOptions cluster;
  cluster.client_name = r.client_name.empty() ? "client.admin" : r.client_name;
  cluster.conf_path = r.conf_path;
  cluster.mon_host = r.mon_host;
  cluster.keyring_path = r.keyring_path;
  if (r.key_in_memory) {
    auto key = LoadKernelKey(KeyringDescription(r.cookie));
    if (!key) return Unexpected(key.error());
    cluster.key = std::move(key).value();
  }
  RbdOpenOptions image;
  image.read_only = r.read_only;
  image.exclusive = r.exclusive;
  image.notrim = r.notrim;
  auto enc = ParseEncryptionFormat(r.encryption);
  if (!enc) return Unexpected(enc.error());
  image.encryption = *enc;
  if (r.passphrase_in_memory) {
    auto pass = LoadKernelKey(PassphraseDescription(r.cookie));
    if (!pass) return Unexpected(pass.error());
    image.passphrase = std::move(pass).value();
  }
  // Fence the daemon that served this device before: it is gone, but its
  // watch would hold the exclusive lock for ~30 s, and fencing guarantees
  // it can never write again.
  auto live = clusters_.Get(cluster);  // held, so OpenBackend reuses this connection
  if (!live) return Unexpected(live.error());
  if (!r.client_addr.empty()) {
    if (auto& c = live; (*c)->Address() != r.client_addr) {
      if (auto f = (*c)->Blocklist(r.client_addr, 3600); !f) {
        spdlog::warn("/dev/nbd{}: {} (lock takeover waits for the old watch to expire)", r.index, f.error().message);
      } else {
        spdlog::info("/dev/nbd{}: fenced the previous daemon's client {}", r.index, r.client_addr);
      }
    }
  }
  auto backend = OpenBackend(r, std::move(cluster), std::move(image));
  if (!backend) return Unexpected(backend.error());
  KernelDeviceParams p;
  p.on_lost = on_image_update_;
  p.index = r.index;
  p.connections = r.connections;
  p.io_timeout_s = r.io_timeout_s;
  p.reattach_timeout_s = r.reattach_timeout_s;
  p.cookie = r.cookie;
  auto dev = KernelDevice::Attach(*nl_, loops_, Export{r.spec, "", *backend}, r.index, p);
  if (!dev) return Unexpected(dev.error());
  Entry& e = devices_[r.index];
  e.record = r;
  e.record.client_addr = (*backend)->cluster()->Address();
  e.backend = *backend;
  e.device = std::move(dev).value();
  spdlog::info("attached {} at /dev/nbd{}", r.spec, r.index);
  return InfoOf(e);
}

Result<MappedInfo> DeviceManager::Attach(const DeviceRecord& record) {
  std::lock_guard lock(mu_);
  auto info = AttachLocked(record);
  if (!info) return info;
  if (auto s = SaveLocked(); !s) return Unexpected(s.error());
  return info;
}

Result<void> DeviceManager::Detach(const std::string& target) {
  std::lock_guard lock(mu_);
  Entry* e = Find(target);
  if (e == nullptr) return Err(ENOENT, "{} is not mapped by this daemon", target);
  e->device->Detach();
  uint32_t index = e->record.index;
  // The record stays in the state file: `attach` or the next daemon takes it back.
  devices_.erase(index);
  spdlog::info("detached /dev/nbd{}; the kernel keeps it", index);
  return {};
}

std::vector<MappedInfo> DeviceManager::List() {
  std::lock_guard lock(mu_);
  std::vector<MappedInfo> out;
  // Reconcile with the kernel: a device that was disconnected behind our back
  // (nbd-client -d, dead-connection timeout) shows as not connected.
  auto status = nl_ ? nl_->Status() : Result<std::vector<NbdDeviceStatus>>(Err(ENOTSUP, "no netlink"));
  for (const auto& [index, e] : devices_) {
    MappedInfo info = InfoOf(e);
    if (status.has_value()) {
      info.kernel_connected = false;
      for (const auto& s : *status) {
        if (s.index == index) info.kernel_connected = s.connected;
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

size_t DeviceManager::Restore() {
  std::lock_guard lock(mu_);
  auto records = store_.Load();
  if (!records) {
    spdlog::error("{}", records.error().message);
    return 0;
  }
  size_t attached = 0;
  std::vector<DeviceRecord> kept;
  for (const auto& r : *records) {
    auto info = AttachLocked(r);
    if (info) {
      attached++;
    } else {
      spdlog::error("cannot reattach {} at /dev/nbd{}: {}; forgetting it", r.spec, r.index, info.error().message);
      ForgetParkedSecrets(r);
    }
  }
  if (auto s = SaveLocked(); !s) spdlog::error("{}", s.error().message);
  return attached;
}

void DeviceManager::DetachAll() {
  std::lock_guard lock(mu_);
  for (auto& [index, e] : devices_) e.device->Detach();
  devices_.clear();  // the state file still lists them for the next daemon
}

void DeviceManager::OnLinkDead(uint32_t index) {
  std::lock_guard lock(mu_);
  auto it = devices_.find(index);
  if (it == devices_.end() || !nl_) return;
  spdlog::warn("/dev/nbd{}: the kernel reports every connection dead; reattaching", index);
  if (auto r = it->second.device->Reattach(*nl_); !r) spdlog::error("/dev/nbd{}: {}", index, r.error().message);
}

void DeviceManager::CheckDevices() {
  std::lock_guard lock(mu_);
  if (!nl_) return;  // the ioctl interface can neither reattach nor resize
  for (auto& [index, e] : devices_) {
    if (e.device->live_connections() < e.record.connections) {
      if (auto r = e.device->Reattach(*nl_); !r) {
        spdlog::warn("/dev/nbd{}: reattach failed (will retry): {}", index, r.error().message);
      }
    }
    uint64_t size = e.backend->Capabilities().size;
    if (size == e.device->size()) continue;
    if (auto r = e.device->Resize(*nl_, size); !r) {
      spdlog::error("/dev/nbd{}: resize to {} bytes failed: {}", index, size, r.error().message);
    } else {
      spdlog::info("/dev/nbd{}: resized to {} bytes", index, size);
    }
  }
}

}  // namespace rbdnbd
