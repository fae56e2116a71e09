#include "control/device_manager.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include <spdlog/spdlog.h>

#include "common/log.h"
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

// Reattach attempts back off from 1 s to 5 s: short enough that a cluster
// that comes back is used within seconds, well inside any reattach window.
constexpr std::chrono::seconds kFirstBackoff{1};
constexpr std::chrono::seconds kMaxBackoff{5};

std::string KeyringDescription(const std::string& cookie) { return "rbd-nbdd:" + cookie; }
std::string PassphraseDescription(const std::string& cookie) { return "rbd-nbdd-luks:" + cookie; }

// Parks a secret that a map request handed over in memory in the kernel
// keyring, for the daemon that reattaches after a restart.
void Park(const std::string& path, const std::string& description, const Secret& secret) {
  if (auto k = StoreKernelKey(description, secret); !k) {
    spdlog::warn("{}: {}; it will not survive a daemon restart", path, k.error().message);
  }
}

// Drops what Map() parked for this device.
void ForgetParkedSecrets(const DeviceRecord& r) {
  if (r.key_in_memory) ForgetKernelKey(KeyringDescription(r.cookie));
  if (r.passphrase_in_memory) ForgetKernelKey(PassphraseDescription(r.cookie));
}

std::string DevicePath(const DeviceRecord& r) { return rbdnbd::DevicePath(r.type, r.index); }

uint64_t NowUnix() { return static_cast<uint64_t>(::time(nullptr)); }

// Whether netlink STATUS lists /dev/nbd<index> as connected.
bool Connected(const std::vector<NbdDeviceStatus>& status, uint32_t index) {
  return std::any_of(status.begin(), status.end(),
                     [index](const NbdDeviceStatus& s) { return s.index == index && s.connected; });
}

// How a new map request differs from the mapping that exists, in the options
// that shape the device or pick the cluster; empty when it is the same map.
std::string Differences(const DeviceRecord& have, const DeviceRecord& want) {
  std::vector<std::string> d;
  auto num = [&d](const char* what, uint64_t a, uint64_t b) {
    if (a != b) d.push_back(fmt::format("{} {} (mapped with {})", what, b, a));
  };
  auto text = [&d](const char* what, const std::string& a, const std::string& b) {
    if (a != b) d.push_back(fmt::format("{} '{}' (mapped with '{}')", what, b, a));
  };
  text("device type", DeviceTypeName(have.type), DeviceTypeName(want.type));
  // A ublk device has one queue per loop, whatever the request said.
  if (want.type == DeviceType::kNbd) num("connections", have.connections, want.connections);
  if (want.type == DeviceType::kUblk && have.type == DeviceType::kUblk) {
    num("queue_depth", have.queue_depth, want.queue_depth);
    num("max_io_bytes", have.max_io_bytes, want.max_io_bytes);
  }
  num("io_timeout", have.io_timeout_s, want.io_timeout_s);
  num("reattach_timeout", have.reattach_timeout_s, want.reattach_timeout_s);
  num("read_only", have.read_only, want.read_only);
  num("exclusive", have.exclusive, want.exclusive);
  num("notrim", have.notrim, want.notrim);
  text("encryption", have.encryption, want.encryption);
  text("client", have.client_name, want.client_name);
  text("mon_host", have.mon_host, want.mon_host);
  text("conf", have.conf_path, want.conf_path);
  return fmt::format("{}", fmt::join(d, ", "));
}

}  // namespace

DeviceManager::DeviceManager(std::unique_ptr<NbdNetlink> nl, LoopPool& loops, StateStore store,
                             std::function<void()> on_image_update)
    : nl_(std::move(nl)), loops_(loops), store_(std::move(store)), on_image_update_(std::move(on_image_update)) {}

DeviceManager::~DeviceManager() { StopWorkers(); }

Result<std::shared_ptr<RbdBackend>> DeviceManager::OpenBackend(const DeviceRecord& r, ClusterOptions cluster,
                                                               RbdOpenOptions image, bool* image_gone) {
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
  if (!b) {
    // Connected, and the cluster says the pool, image or snapshot is not
    // there: that will not change by waiting.
    if (image_gone != nullptr) *image_gone = b.error().code == ENOENT;
    return Unexpected(b.error());
  }
  (*b)->SetUpdateListener(on_image_update_);
  return b;
}

api::DeviceState DeviceManager::StateOf(const Entry& e) {
  switch (e.state) {
    case State::kMapped:
      // Every connection dead: the kernel holds the I/O until they are replaced.
      return e.device && e.device->live_connections() == 0 ? api::DeviceState::kReattaching
                                                           : api::DeviceState::kMapped;
    case State::kReattaching: return api::DeviceState::kReattaching;
    case State::kUnmapping: return api::DeviceState::kUnmapping;
  }
  return api::DeviceState::kMapped;
}

void DeviceManager::SetErrorLocked(Entry& e, std::string message) {
  e.last_error = std::move(message);
  e.last_error_unix = NowUnix();
  e.vitals.SetControlError(e.last_error, e.last_error_unix);
}

MappedInfo DeviceManager::InfoOf(const Entry& e) {
  MappedInfo info;
  info.record = e.record;
  info.device = DevicePath(e.record);
  info.last_error = e.last_error;
  info.last_error_unix = e.last_error_unix;
  info.reattach_attempts = e.attempts;
  if (e.device) {
    info.live_connections = e.device->live_connections();
    info.size = e.device->size();
  }
  if (e.ublk) {
    info.live_connections = e.ublk->queues();
    info.size = e.ublk->size();
  }
  if (e.backend) info.image_size = e.backend->Capabilities().size;
  info.state = StateOf(e);
  info.health = e.vitals.Health(info.state, e.io_stats->Snapshot(), MonotonicNowNs());
  return info;
}

Result<void> DeviceManager::SaveLocked() {
  std::vector<DeviceRecord> records;
  for (const auto& [key, e] : devices_) records.push_back(e->record);
  for (const auto& [key, r] : detached_) {
    if (!devices_.count(key)) records.push_back(r);
  }
  return store_.Save(records);
}

bool DeviceManager::IndexTakenLocked(Key key) const {
  return devices_.count(key) || reserved_indexes_.count(key) || detached_.count(key);
}

Result<UblkControl*> DeviceManager::UblkCtl() {
  std::lock_guard lock(ublk_ctl_mu_);
  if (ublk_ctl_) return ublk_ctl_.get();
  auto c = UblkControl::Open();
  if (!c) {
    if (c.error().code == ENODEV) {
      return Err(ENODEV, "the ublk driver is not loaded: modprobe ublk_drv (Linux 6.0 or later, "
                 "CONFIG_BLK_DEV_UBLK; no {})", kUblkControlPath);
    }
    if (c.error().code == EACCES || c.error().code == EPERM) {
      return Err(c.error().code, "the daemon may not use {}: {} (ublk needs root or CAP_SYS_ADMIN)",
                 kUblkControlPath, std::strerror(c.error().code));
    }
    return Unexpected(c.error());
  }
  ublk_ctl_ = std::move(c).value();
  // What this kernel's driver can do, once, for whoever reads the log.
  if (auto f = ublk_ctl_->GetFeatures()) {
    spdlog::info("ublk driver features: {}", UblkFlagNames(*f));
  } else {
    spdlog::info("ublk driver features: unknown ({})", f.error().message);
  }
  return ublk_ctl_.get();
}

UblkDeviceParams DeviceManager::UblkParamsFor(const DeviceRecord& r) {
  UblkDeviceParams p;
  p.id = r.index;
  p.queues = 0;  // one per loop
  // The record's shape (a record of an older daemon loaded the defaults); Add() checks it.
  p.depth = static_cast<uint16_t>(r.queue_depth != 0 && r.queue_depth <= kUblkMaxDepth ? r.queue_depth
                                                                                        : kUblkDefaultDepth);
  p.block.logical_block = r.encryption.empty() ? 512 : 4096;  // LUKS encrypts 4 KiB sectors
  p.block.max_io_bytes = r.max_io_bytes != 0 ? r.max_io_bytes : kUblkDefaultMaxIoBytes;
  p.user_recovery = true;
  p.recovery_reissue = true;
  return p;
}

std::optional<bool> DeviceManager::KernelHolds(const DeviceRecord& r) {
  if (r.type == DeviceType::kNbd) {
    if (!nl_) return std::nullopt;
    auto status = nl_->Status(r.index);
    if (!status) {
      if (status.error().code == ENOENT || status.error().code == ENODEV) return false;
      return std::nullopt;
    }
    return Connected(*status, r.index);
  }
  auto ctl = UblkCtl();
  if (!ctl) return ctl.error().code == ENODEV ? std::optional<bool>(false) : std::nullopt;
  auto info = (*ctl)->GetDevInfo(r.index);
  if (!info) return info.error().code == ENODEV ? std::optional<bool>(false) : std::nullopt;
  return true;
}

Result<void> DeviceManager::DropHeld(const DeviceRecord& r) {
  if (r.type == DeviceType::kNbd) {
    if (!nl_) return {};
    if (auto d = nl_->Disconnect(r.index); !d && d.error().code != ENOENT) return d;
    return {};
  }
  auto ctl = UblkCtl();
  if (!ctl) return ctl.error().code == ENODEV ? Result<void>() : Result<void>(Unexpected(ctl.error()));
  // STOP_DEV of a quiesced device fails the I/O it holds; DEL_DEV removes /dev/ublkcN.
  if (auto s = (*ctl)->StopDev(r.index); !s && s.error().code != ENODEV) return s;
  if (auto d = (*ctl)->DelDev(r.index); !d && d.error().code != ENODEV) return d;
  return {};
}

Result<MappedInfo> DeviceManager::Map(MapRequest req) {
  auto spec = ParseImageSpec(req.spec);
  if (!spec) return Unexpected(spec.error());
  if (req.device.cookie.empty()) req.device.cookie = NewCookie();
  DeviceRecord r = RecordForMap(req, *spec);
  ScopedLogFields log_fields(req.device.index ? DevicePath(r) : std::string(), r.spec);
  if (r.type == DeviceType::kUblk) {
    // The queue shape, before anything is opened or reserved: one queue per loop.
    auto shape = CheckUblkDeviceShape(static_cast<uint32_t>(loops_.size()), r.queue_depth, r.max_io_bytes,
                                      UblkParamsFor(r).block.logical_block);
    if (!shape) return Err(EINVAL, "cannot map {} as a ublk device: {}", r.spec, shape.error().message);
  }

  // 1. Reserve the spec (and a requested index) under the lock.
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Err(ESHUTDOWN, "the daemon is stopping");
    for (const auto& [key, e] : devices_) {
      if (e->record.spec != r.spec) continue;
      const std::string path = DevicePath(e->record);
      std::string diff = Differences(e->record, r);
      bool same_index = !req.device.index || *req.device.index == e->record.index;
      if (e->state == State::kMapped && diff.empty() && same_index) {
        spdlog::info("map {}: already mapped at {} with the same options", r.spec, path);
        MappedInfo info = InfoOf(*e);
        info.already_mapped = true;
        return info;
      }
      if (e->state != State::kMapped) {
        return Err(EBUSY, "{} is {} at {}; try again later", r.spec, api::DeviceStateName(InfoOf(*e).state),
                   path);
      }
      if (!same_index) diff += fmt::format("{}device {} (mapped at {})", diff.empty() ? "" : ", ",
                                           DevicePath(r), path);
      return Err(EEXIST, "{} is already mapped at {} with other options: {}", r.spec, path, diff);
    }
    if (mapping_specs_.count(r.spec)) return Err(EBUSY, "a map of {} is already in progress", r.spec);
    if (req.device.index && IndexTakenLocked(KeyOf(r))) {
      return Err(EBUSY, "{} is already in use by this daemon", DevicePath(r));
    }
    mapping_specs_.insert(r.spec);
    if (req.device.index) reserved_indexes_.insert(KeyOf(r));
  }
  const Key requested_key = KeyOf(r);
  auto release = [this, &r, &req, requested_key] {
    std::lock_guard lock(mu_);
    mapping_specs_.erase(r.spec);
    if (req.device.index) reserved_indexes_.erase(requested_key);
  };

  // 2. The slow work, without the lock: the cluster connect and image open,
  //    then the netlink CONNECT and the wait for the kernel's device.
  auto backend = OpenBackend(r, req.cluster, req.image);
  if (!backend) {
    release();
    return Unexpected(backend.error());
  }
  req.device.on_lost = on_image_update_;
  r.client_addr = (*backend)->cluster()->Address();
  Result<std::unique_ptr<KernelDevice>> dev = Err(EIO, "not mapped");
  Result<std::unique_ptr<UblkDevice>> ublk = Err(EIO, "not mapped");
  auto io_stats = DeviceIoStats::Create();
  if (r.type == DeviceType::kUblk) {
    // Add() is all-or-nothing: a failure leaves no /dev/ublkc* behind.
    auto ctl = UblkCtl();
    UblkDeviceParams params = UblkParamsFor(r);
    params.id = req.device.index;  // nullopt: the kernel picks
    if (ctl) ublk = UblkDevice::Add(**ctl, loops_, Export{r.spec, "", *backend, io_stats}, params);
    else ublk = Unexpected(ctl.error());
    if (!ublk) {
      release();
      return Err(ublk.error().code, "cannot map {} as a ublk device: {}", r.spec, ublk.error().message);
    }
    r.index = (*ublk)->id();
    r.connections = static_cast<uint32_t>((*ublk)->queues());
  } else if (nl_) {
    dev = KernelDevice::Map(nl_.get(), loops_, Export{r.spec, "", *backend, io_stats}, req.device);
  } else {
    std::lock_guard ioctl_lock(ioctl_map_mu_);
    dev = KernelDevice::Map(nullptr, loops_, Export{r.spec, "", *backend, io_stats}, req.device);
  }
  if (r.type == DeviceType::kNbd) {
    if (!dev) {
      release();
      return Unexpected(dev.error());
    }
    r.index = (*dev)->index();
  }
  ScopedLogFields device_log_fields(DevicePath(r), r.spec);
  auto quiesce = RbdQuiesceWatch::StartOrWarn(*backend, DevicePath(r), quiesce_options_);
  if (r.key_in_memory) Park(DevicePath(r), KeyringDescription(r.cookie), req.cluster.key);
  if (r.passphrase_in_memory) Park(DevicePath(r), PassphraseDescription(r.cookie), req.image.passphrase);

  // 3. Commit under the lock.
  std::unique_ptr<KernelDevice> undo;
  std::unique_ptr<UblkDevice> undo_ublk;
  MappedInfo info;
  {
    std::lock_guard lock(mu_);
    mapping_specs_.erase(r.spec);
    if (req.device.index) reserved_indexes_.erase(requested_key);
    auto e = std::make_shared<Entry>();
    e->record = r;
    e->io_stats = io_stats;
    e->backend = *backend;
    if (r.type == DeviceType::kUblk) e->ublk = std::move(ublk).value();
    else e->device = std::move(dev).value();
    e->quiesce = std::move(quiesce);
    devices_[KeyOf(r)] = e;
    detached_.erase(KeyOf(r));
    if (auto s = SaveLocked(); !s) {
      quiesce = std::move(e->quiesce);
      undo = std::move(e->device);
      undo_ublk = std::move(e->ublk);
      devices_.erase(KeyOf(r));
      ForgetParkedSecrets(r);
    } else {
      info = InfoOf(*e);
    }
  }
  if (undo || undo_ublk) {
    // The state file could not list it, so it would not survive a restart:
    // take it down again (outside the lock: the drain can take a while).
    quiesce.reset();
    if (undo) (void)undo->Unmap(nl_.get());
    if (undo_ublk) (void)undo_ublk->Remove();
    return Err(EIO, "{}: cannot record the mapping in {}", r.spec, store_.path());
  }
  if (r.type == DeviceType::kUblk) {
    spdlog::info("mapped {} at {} ({} queue(s) of depth {}, max I/O {} bytes, cookie {})", r.spec, DevicePath(r),
                 r.connections, r.queue_depth, r.max_io_bytes, r.cookie);
  } else {
    spdlog::info("mapped {} at {} ({} connection(s), cookie {})", r.spec, DevicePath(r), r.connections, r.cookie);
  }
  return info;
}

std::shared_ptr<DeviceManager::Entry> DeviceManager::Find(const std::string& target) {
  for (auto& [key, e] : devices_) {
    const DeviceRecord& r = e->record;
    if (DevicePath(r) == target || r.spec == target) return e;
    if (r.type == DeviceType::kNbd && std::to_string(r.index) == target) return e;  // N: nbd, as always
  }
  return nullptr;
}

Result<void> DeviceManager::Unmap(const std::string& target, bool force) {
  std::shared_ptr<Entry> e;
  State was;
  {
    std::lock_guard lock(mu_);
    e = Find(target);
    if (e == nullptr) return Err(ENOENT, "{} is not mapped by this daemon", target);
    if (e->state == State::kUnmapping) return Err(EBUSY, "{} is already being unmapped", DevicePath(e->record));
    was = e->state;
    e->state = State::kUnmapping;  // a reattach worker stops at its next look
  }
  cv_.notify_all();
  const Key key = KeyOf(e->record);
  ScopedLogFields log_fields(DevicePath(e->record), e->record.spec);
  std::string path = DevicePath(e->record);
  auto restore_state = [this, &e, was] {
    std::lock_guard lock(mu_);
    e->state = was;
    if (was == State::kReattaching) StartWorkerLocked(e);
  };
  if (!force) {
    // O_EXCL on a block device fails with EBUSY while it is mounted or held.
    UniqueFd probe(::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK));
    if (!probe && errno == EBUSY) {
      restore_state();
      return Err(EBUSY, "{} is in use (mounted or held open); unmount it first, or use --force", path);
    }
  }
  // Thaw first: a forced unmap must not take a frozen filesystem's device
  // away, and no quiesce may start on a device that is going.
  std::unique_ptr<RbdQuiesceWatch> quiesce;
  {
    std::lock_guard lock(mu_);
    quiesce = std::move(e->quiesce);
  }
  quiesce.reset();
  Result<void> gone;
  if (e->device) gone = e->device->Unmap(nl_.get());
  else if (e->ublk) gone = e->ublk->Remove();
  if (e->device || e->ublk) {
    if (auto r = gone; !r) {
      auto again = e->backend ? RbdQuiesceWatch::StartOrWarn(e->backend, path, quiesce_options_) : nullptr;
      {
        std::lock_guard lock(mu_);
        e->quiesce = std::move(again);
      }
      restore_state();
      return r;
    }
  } else {
    // Reattaching: nothing of ours serves it; the kernel drops it and fails
    // the I/O it holds.
    if (auto r = DropHeld(e->record); !r) {
      restore_state();
      return r;
    }
  }
  std::lock_guard lock(mu_);
  devices_.erase(key);
  ForgetParkedSecrets(e->record);
  spdlog::info("unmapped {} from {}", e->record.spec, path);
  return SaveLocked();
}

Result<DeviceManager::Served> DeviceManager::AttachWork(const DeviceRecord& r, std::shared_ptr<DeviceIoStats> io_stats,
                                                       bool* image_gone) {
  *image_gone = false;
  if (r.type == DeviceType::kNbd && !nl_) {
    return Err(ENOTSUP, "reattaching {} needs the nbd netlink interface", DevicePath(r));
  }
  auto req = MapRequestForRecord(r);
  if (!req) return Unexpected(req.error());
  if (r.key_in_memory) {
    auto key = LoadKernelKey(KeyringDescription(r.cookie));
    if (!key) return Unexpected(key.error());
    req->cluster.key = std::move(key).value();
  }
  if (r.passphrase_in_memory) {
    auto pass = LoadKernelKey(PassphraseDescription(r.cookie));
    if (!pass) return Unexpected(pass.error());
    req->image.passphrase = std::move(pass).value();
  }
  // Fence the daemon that served this device before: it is gone, but its
  // watch would hold the exclusive lock for ~30 s, and fencing guarantees
  // it can never write again.
  auto live = clusters_.Get(req->cluster);  // held, so OpenBackend reuses this connection
  if (!live) return Unexpected(live.error());
  if (!r.client_addr.empty() && (*live)->Address() != r.client_addr) {
    if (auto f = (*live)->Blocklist(r.client_addr, 3600); !f) {
      spdlog::warn("{}: {} (lock takeover waits for the old watch to expire)", DevicePath(r), f.error().message);
    } else {
      spdlog::info("{}: fenced the previous daemon's client {}", DevicePath(r), r.client_addr);
    }
  }
  auto backend = OpenBackend(r, req->cluster, req->image, image_gone);
  if (!backend) return Unexpected(backend.error());
  Served s;
  if (r.type == DeviceType::kUblk) {
    // The kernel kept the device quiesced, its I/O held: take it over.
    auto ctl = UblkCtl();
    if (!ctl) return Unexpected(ctl.error());
    auto dev = UblkDevice::Recover(**ctl, loops_, Export{r.spec, "", *backend, std::move(io_stats)}, r.index,
                                   UblkParamsFor(r));
    if (!dev) return Unexpected(dev.error());
    s.ublk = std::move(dev).value();
  } else {
    req->device.on_lost = on_image_update_;
    auto dev = KernelDevice::Attach(*nl_, loops_, Export{r.spec, "", *backend, std::move(io_stats)}, r.index,
                                    req->device);
    if (!dev) return Unexpected(dev.error());
    s.device = std::move(dev).value();
  }
  s.quiesce = RbdQuiesceWatch::StartOrWarn(*backend, DevicePath(r), quiesce_options_);
  s.client_addr = (*backend)->cluster()->Address();
  s.backend = std::move(backend).value();
  return s;
}

Result<MappedInfo> DeviceManager::Attach(const DeviceRecord& record) {
  ScopedLogFields log_fields(DevicePath(record), record.spec);
  const Key key = KeyOf(record);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Err(ESHUTDOWN, "the daemon is stopping");
    if (devices_.count(key) || reserved_indexes_.count(key)) {
      return Err(EBUSY, "{} is already attached", DevicePath(record));
    }
    reserved_indexes_.insert(key);
  }
  bool image_gone = false;
  auto io_stats = DeviceIoStats::Create();
  auto served = AttachWork(record, io_stats, &image_gone);
  std::lock_guard lock(mu_);
  reserved_indexes_.erase(key);
  if (!served) return Unexpected(served.error());
  auto e = std::make_shared<Entry>();
  e->record = record;
  e->io_stats = std::move(io_stats);
  e->record.client_addr = served->client_addr;
  e->backend = std::move(served->backend);
  e->device = std::move(served->device);
  e->ublk = std::move(served->ublk);
  e->quiesce = std::move(served->quiesce);
  devices_[key] = e;
  detached_.erase(key);
  spdlog::info("attached {} at {}", record.spec, DevicePath(record));
  if (auto s = SaveLocked(); !s) return Unexpected(s.error());
  return InfoOf(*e);
}

Result<void> DeviceManager::Detach(const std::string& target) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lock(mu_);
    e = Find(target);
    if (e == nullptr) return Err(ENOENT, "{} is not mapped by this daemon", target);
    if (e->state == State::kUnmapping) return Err(EBUSY, "{} is being unmapped", DevicePath(e->record));
    if (e->record.type == DeviceType::kUblk) {
      // Its queues' commands sit on this daemon's rings: only the daemon's
      // exit hands them back to the kernel.
      return Err(ENOTSUP, "{} is a ublk device: it cannot be detached while the daemon runs (stop the "
                 "daemon with SIGTERM to leave it to the next one)", DevicePath(e->record));
    }
    // The record stays in the state file: `attach` or the next daemon takes it back.
    detached_[KeyOf(e->record)] = e->record;
    devices_.erase(KeyOf(e->record));
    e->state = State::kUnmapping;  // a reattach worker stops at its next look
  }
  cv_.notify_all();
  e->quiesce.reset();  // thawed before the device is left to the kernel
  if (e->device) e->device->Detach();
  spdlog::info("detached {}; the kernel keeps it", DevicePath(e->record));
  return {};
}

std::vector<MappedInfo> DeviceManager::List() {
  // Reconcile with the kernel: a device that was disconnected behind our back
  // (nbd-client -d, dead-connection timeout) shows as not connected. Asked
  // before taking mu_: it is a kernel round trip.
  auto status = nl_ ? nl_->Status() : Result<std::vector<NbdDeviceStatus>>(Err(ENOTSUP, "no netlink"));
  std::vector<MappedInfo> out;
  std::lock_guard lock(mu_);
  const uint64_t now = MonotonicNowNs();
  for (const auto& [key, e] : devices_) {
    e->vitals.Observe(e->io_stats->Snapshot(), StateOf(*e) == api::DeviceState::kReattaching, now);
    MappedInfo info = InfoOf(*e);
    if (status.has_value() && e->record.type == DeviceType::kNbd) {
      info.kernel_connected = Connected(*status, e->record.index);
    }
    out.push_back(std::move(info));
  }
  return out;
}

void DeviceManager::ForgetLocked(Key key, const char* why) {
  auto it = devices_.find(key);
  if (it == devices_.end()) return;
  spdlog::warn("forgetting {} at {}: {}", it->second->record.spec, DevicePath(it->second->record), why);
  ForgetParkedSecrets(it->second->record);
  devices_.erase(it);
  if (auto s = SaveLocked(); !s) spdlog::error("{}", s.error().message);
}

void DeviceManager::StartWorkerLocked(const std::shared_ptr<Entry>& entry) {
  if (entry->worker_active || stopping_) return;  // one worker per entry
  entry->worker_active = true;
  running_workers_++;
  workers_.emplace_back([this, entry] { ReattachWorker(entry); });
}

// One device's reattach loop, on a thread of its own so that a cluster that
// does not answer holds up only this device.
void DeviceManager::ReattachWorker(std::shared_ptr<Entry> e) {
  const Key key = KeyOf(e->record);
  const std::string path = DevicePath(e->record);
  ScopedLogFields log_fields(path, e->record.spec);
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
  std::unique_lock lock(mu_);
  while (!stopping_ && e->state == State::kReattaching) {
    DeviceRecord record = e->record;
    std::shared_ptr<DeviceIoStats> io_stats = e->io_stats;
    lock.unlock();
    std::optional<bool> holds = KernelHolds(record);
    bool image_gone = false;
    Result<Served> served = Err(ENODEV, "the kernel no longer holds the device");
    if (holds != false) served = AttachWork(record, std::move(io_stats), &image_gone);
    lock.lock();
    if (stopping_ || e->state != State::kReattaching) {
      // Unmapped, detached or stopping while we tried: let go of what we got.
      if (served) {
        lock.unlock();
        served->quiesce.reset();
        if (served->device) served->device->Detach();
        if (served->ublk) served->ublk->Abandon();
        lock.lock();
      }
      break;
    }
    e->first_try_done = true;
    cv_.notify_all();
    if (served) {
      e->backend = std::move(served->backend);
      e->device = std::move(served->device);
      e->ublk = std::move(served->ublk);
      e->quiesce = std::move(served->quiesce);
      e->record.client_addr = served->client_addr;
      e->state = State::kMapped;
      e->last_error.clear();
      e->vitals.LeaveStall(MonotonicNowNs());
      spdlog::info("attached {} at {}{}", record.spec, path,
                   e->attempts > 0 ? fmt::format(" after {} failed attempt(s)", e->attempts) : "");
      if (auto s = SaveLocked(); !s) spdlog::error("{}", s.error().message);
      break;
    }
    if (holds == false) {
      ForgetLocked(key, "the kernel no longer holds the device (unmapped elsewhere, or its reattach window ended)");
      break;
    }
    if (image_gone) {
      std::string why = served.error().message;
      ForgetLocked(key, "the image is gone; disconnecting the device so that its I/O fails now");
      spdlog::error("{}: {}", path, why);
      lock.unlock();
      if (auto d = DropHeld(record); !d) spdlog::error("{}", d.error().message);
      lock.lock();
      break;
    }
    e->attempts++;
    SetErrorLocked(*e, served.error().message);
    spdlog::warn("cannot reattach {} at {} yet (attempt {}; the kernel holds its I/O): {}; retrying in {} ms",
                 record.spec, path, e->attempts, e->last_error, backoff.count());
    cv_.wait_for(lock, backoff, [this, &e] { return stopping_ || e->state != State::kReattaching; });
    backoff = std::min(backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(kMaxBackoff));
  }
  e->first_try_done = true;
  e->worker_active = false;
  running_workers_--;
  cv_.notify_all();
}

size_t DeviceManager::Restore(std::chrono::milliseconds first_try) {
  auto records = store_.Load();
  if (!records) {
    spdlog::error("{}", records.error().message);
    return 0;
  }
  std::vector<std::shared_ptr<Entry>> started;
  {
    std::lock_guard lock(mu_);
    for (const auto& r : *records) {
      if (devices_.count(KeyOf(r))) continue;
      if (r.type == DeviceType::kNbd && !nl_) {
        spdlog::error("cannot reattach {} at {} without the nbd netlink interface; forgetting it", r.spec,
                      DevicePath(r));
        ForgetParkedSecrets(r);
        continue;
      }
      auto e = std::make_shared<Entry>();
      e->record = r;
      e->state = State::kReattaching;
      e->vitals.EnterStall(MonotonicNowNs());  // the kernel holds its I/O until a worker serves it
      devices_[KeyOf(r)] = e;
      started.push_back(e);
    }
    if (auto s = SaveLocked(); !s) spdlog::error("{}", s.error().message);
    for (const auto& e : started) StartWorkerLocked(e);
  }
  // Give a healthy cluster the chance to have every device served before the
  // control socket opens; a slow one keeps trying in the background.
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, first_try, [&started] {
    return std::all_of(started.begin(), started.end(), [](const auto& e) { return e->first_try_done; });
  });
  size_t attached = 0;
  for (const auto& e : started) {
    if (e->state == State::kMapped) attached++;
  }
  if (attached < started.size()) {
    spdlog::warn("{} of {} device(s) from the state file are not served yet; retrying in the background",
                 started.size() - attached, started.size());
  }
  return attached;
}

void DeviceManager::StopWorkers() {
  std::vector<std::thread> workers;
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    if (running_workers_ > 0) {
      spdlog::info("waiting for {} reattach attempt(s) in flight to end", running_workers_);
    }
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void DeviceManager::DetachAll() {
  StopWorkers();
  std::map<Key, std::shared_ptr<Entry>> devices;
  {
    std::lock_guard lock(mu_);
    devices.swap(devices_);  // the state file still lists them for the next daemon
  }
  for (auto& [key, e] : devices) {
    e->quiesce.reset();  // SIGTERM: nothing stays frozen behind the daemon
    if (e->device) e->device->Detach();
    // The kernel quiesces it once our rings close, and holds its I/O for the next daemon.
    if (e->ublk) e->ublk->Abandon();
  }
}

void DeviceManager::OnLinkDead(uint32_t index) {
  if (!nl_) return;
  std::lock_guard lock(mu_);
  auto it = devices_.find(KeyOf(DeviceType::kNbd, index));
  if (it == devices_.end() || it->second->state != State::kMapped || !it->second->device) return;
  Entry& e = *it->second;
  spdlog::warn("/dev/nbd{}: the kernel reports every connection dead; reattaching", index);
  if (e.device->live_connections() == 0) e.vitals.EnterStall(MonotonicNowNs());
  // New socketpairs and a RECONFIGURE: local work, no network wait.
  if (auto r = e.device->Reattach(*nl_); !r) {
    SetErrorLocked(e, r.error().message);
    spdlog::error("/dev/nbd{}: {}", index, r.error().message);
  } else if (e.device->live_connections() > 0) {
    e.vitals.LeaveStall(MonotonicNowNs());
  }
}

void DeviceManager::CheckDevices() {
  if (!nl_) return;  // the ioctl interface can neither reattach nor resize
  // The kernel's view first, without the lock (a kernel round trip).
  auto status = nl_->Status();
  // Declared before the lock, so destroyed after it is released.
  std::vector<std::unique_ptr<RbdQuiesceWatch>> retired;
  std::lock_guard lock(mu_);
  std::vector<Key> dropped;
  for (auto& [key, ep] : devices_) {
    Entry& e = *ep;
    const uint32_t index = e.record.index;
    if (e.state == State::kMapped && e.ublk) {
      CheckUblkSizeLocked(e);
      continue;
    }
    if (e.state != State::kMapped || !e.device) continue;
    if (e.device->live_connections() < e.record.connections) {
      bool held = !status.has_value() || Connected(*status, index);
      if (!held && e.device->live_connections() == 0) {
        dropped.push_back(key);
        continue;
      }
      if (e.device->live_connections() == 0) e.vitals.EnterStall(MonotonicNowNs());
      if (auto r = e.device->Reattach(*nl_); !r) {
        e.attempts++;
        SetErrorLocked(e, r.error().message);
        spdlog::warn("/dev/nbd{}: reattach failed (will retry): {}", index, r.error().message);
      } else if (e.device->live_connections() > 0) {
        e.vitals.LeaveStall(MonotonicNowNs());
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
  for (Key key : dropped) {
    retired.push_back(std::move(devices_[key]->quiesce));
    devices_[key]->device->Detach();
    ForgetLocked(key, "the kernel no longer holds the device (unmapped elsewhere, or its reattach window ended)");
  }
}

void DeviceManager::CheckUblkSizeLocked(Entry& e) {
  const uint64_t size = e.backend->Capabilities().size;
  if (size == e.ublk->size() || size == e.resize_refused) return;
  const std::string path = DevicePath(e.record);
  if (auto r = e.ublk->Resize(size); !r) {
    // Once per new size: the image stays resized, the device keeps its old size.
    e.resize_refused = size;
    SetErrorLocked(e, fmt::format("resize of {} to {} bytes failed: {}", path, size, r.error().message));
    spdlog::error("{}", e.last_error);
    return;
  }
  e.resize_refused = 0;
  spdlog::info("{}: resized to {} bytes", path, size);
}

void DeviceManager::SampleHealth() {
  std::lock_guard lock(mu_);
  const uint64_t now = MonotonicNowNs();
  for (auto& [index, e] : devices_) {
    e->vitals.Observe(e->io_stats->Snapshot(), StateOf(*e) == api::DeviceState::kReattaching, now);
  }
}

ManagerMetrics DeviceManager::Metrics() {
  ManagerMetrics m;
  std::set<const RadosCluster*> serving;  // compared, never dereferenced
  {
    std::lock_guard lock(mu_);
    const uint64_t now = MonotonicNowNs();
    for (auto& [key, e] : devices_) {
      api::DeviceState state = StateOf(*e);
      m.devices_by_state[static_cast<size_t>(state)]++;
      DeviceSample d;
      d.io = e->io_stats->Snapshot();
      e->vitals.Observe(d.io, state == api::DeviceState::kReattaching, now);
      d.labels.device = DevicePath(e->record).substr(5);  // nbdN, ublkbN
      if (auto spec = ParseImageSpec(e->record.spec)) {
        d.labels.pool = spec->pool;
        d.labels.ns = spec->ns;
        d.labels.image = spec->image;
      }
      DaemonDeviceValues v;
      v.configured_connections = e->record.connections;
      v.reattaches = e->device ? e->device->reattaches() : 0;
      v.stalled_seconds = e->vitals.StalledSeconds(now);
      d.daemon = v;
      m.devices.push_back(std::move(d));
      if (e->backend) serving.insert(e->backend->cluster().get());
    }
  }
  // The pool's own lock, after ours (never both): it too is never held across a connect.
  const uint64_t live = clusters_.live();
  m.clusters_connected = std::min<uint64_t>(serving.size(), live);
  m.clusters_idle = live - m.clusters_connected;
  return m;
}

}  // namespace rbdnbd
