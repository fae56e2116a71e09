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

std::string DevicePath(uint32_t index) { return "/dev/nbd" + std::to_string(index); }

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
  num("connections", have.connections, want.connections);
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
  info.device = DevicePath(e.record.index);
  info.last_error = e.last_error;
  info.last_error_unix = e.last_error_unix;
  info.reattach_attempts = e.attempts;
  if (e.device) {
    info.live_connections = e.device->live_connections();
    info.size = e.device->size();
  }
  if (e.backend) info.image_size = e.backend->Capabilities().size;
  info.state = StateOf(e);
  info.health = e.vitals.Health(info.state, e.io_stats->Snapshot(), MonotonicNowNs());
  return info;
}

Result<void> DeviceManager::SaveLocked() {
  std::vector<DeviceRecord> records;
  for (const auto& [index, e] : devices_) records.push_back(e->record);
  for (const auto& [index, r] : detached_) {
    if (!devices_.count(index)) records.push_back(r);
  }
  return store_.Save(records);
}

bool DeviceManager::IndexTakenLocked(uint32_t index) const {
  return devices_.count(index) || reserved_indexes_.count(index) || detached_.count(index);
}

Result<MappedInfo> DeviceManager::Map(MapRequest req) {
  auto spec = ParseImageSpec(req.spec);
  if (!spec) return Unexpected(spec.error());
  if (req.device.cookie.empty()) req.device.cookie = NewCookie();
  DeviceRecord r = RecordForMap(req, *spec);
  ScopedLogFields log_fields(req.device.index ? DevicePath(*req.device.index) : std::string(), r.spec);

  // 1. Reserve the spec (and a requested index) under the lock.
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Err(ESHUTDOWN, "the daemon is stopping");
    for (const auto& [index, e] : devices_) {
      if (e->record.spec != r.spec) continue;
      std::string diff = Differences(e->record, r);
      bool same_index = !req.device.index || *req.device.index == index;
      if (e->state == State::kMapped && diff.empty() && same_index) {
        spdlog::info("map {}: already mapped at {} with the same options", r.spec, DevicePath(index));
        MappedInfo info = InfoOf(*e);
        info.already_mapped = true;
        return info;
      }
      if (e->state != State::kMapped) {
        return Err(EBUSY, "{} is {} at {}; try again later", r.spec, api::DeviceStateName(InfoOf(*e).state),
                   DevicePath(index));
      }
      if (!same_index) diff += fmt::format("{}device {} (mapped at {})", diff.empty() ? "" : ", ",
                                           DevicePath(*req.device.index), DevicePath(index));
      return Err(EEXIST, "{} is already mapped at {} with other options: {}", r.spec, DevicePath(index), diff);
    }
    if (mapping_specs_.count(r.spec)) return Err(EBUSY, "a map of {} is already in progress", r.spec);
    if (req.device.index && IndexTakenLocked(*req.device.index)) {
      return Err(EBUSY, "{} is already in use by this daemon", DevicePath(*req.device.index));
    }
    mapping_specs_.insert(r.spec);
    if (req.device.index) reserved_indexes_.insert(*req.device.index);
  }
  auto release = [this, &r, &req] {
    std::lock_guard lock(mu_);
    mapping_specs_.erase(r.spec);
    if (req.device.index) reserved_indexes_.erase(*req.device.index);
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
  auto io_stats = DeviceIoStats::Create();
  if (nl_) {
    dev = KernelDevice::Map(nl_.get(), loops_, Export{r.spec, "", *backend, io_stats}, req.device);
  } else {
    std::lock_guard ioctl_lock(ioctl_map_mu_);
    dev = KernelDevice::Map(nullptr, loops_, Export{r.spec, "", *backend, io_stats}, req.device);
  }
  if (!dev) {
    release();
    return Unexpected(dev.error());
  }
  r.index = (*dev)->index();
  ScopedLogFields device_log_fields(DevicePath(r.index), r.spec);
  auto quiesce = RbdQuiesceWatch::StartOrWarn(*backend, DevicePath(r.index), quiesce_options_);
  if (r.key_in_memory) Park(r.index, KeyringDescription(r.cookie), req.cluster.key);
  if (r.passphrase_in_memory) Park(r.index, PassphraseDescription(r.cookie), req.image.passphrase);

  // 3. Commit under the lock.
  std::unique_ptr<KernelDevice> undo;
  MappedInfo info;
  {
    std::lock_guard lock(mu_);
    mapping_specs_.erase(r.spec);
    if (req.device.index) reserved_indexes_.erase(*req.device.index);
    auto e = std::make_shared<Entry>();
    e->record = r;
    e->io_stats = io_stats;
    e->backend = *backend;
    e->device = std::move(dev).value();
    e->quiesce = std::move(quiesce);
    devices_[r.index] = e;
    detached_.erase(r.index);
    if (auto s = SaveLocked(); !s) {
      quiesce = std::move(e->quiesce);
      undo = std::move(e->device);
      devices_.erase(r.index);
      ForgetParkedSecrets(r);
    } else {
      info = InfoOf(*e);
    }
  }
  if (undo) {
    // The state file could not list it, so it would not survive a restart:
    // take it down again (outside the lock: the drain can take a while).
    quiesce.reset();
    (void)undo->Unmap(nl_.get());
    return Err(EIO, "{}: cannot record the mapping in {}", r.spec, store_.path());
  }
  spdlog::info("mapped {} at /dev/nbd{} ({} connection(s), cookie {})", r.spec, r.index, r.connections, r.cookie);
  return info;
}

std::shared_ptr<DeviceManager::Entry> DeviceManager::Find(const std::string& target) {
  for (auto& [index, e] : devices_) {
    if (DevicePath(index) == target || e->record.spec == target || std::to_string(index) == target) return e;
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
    if (e->state == State::kUnmapping) return Err(EBUSY, "{} is already being unmapped", DevicePath(e->record.index));
    was = e->state;
    e->state = State::kUnmapping;  // a reattach worker stops at its next look
  }
  cv_.notify_all();
  uint32_t index = e->record.index;
  ScopedLogFields log_fields(DevicePath(index), e->record.spec);
  std::string path = DevicePath(index);
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
  if (e->device) {
    if (auto r = e->device->Unmap(nl_.get()); !r) {
      auto again = e->backend ? RbdQuiesceWatch::StartOrWarn(e->backend, path, quiesce_options_) : nullptr;
      {
        std::lock_guard lock(mu_);
        e->quiesce = std::move(again);
      }
      restore_state();
      return r;
    }
  } else if (nl_) {
    // Reattaching: nothing of ours serves it; the kernel drops it and fails
    // the I/O it holds.
    if (auto r = nl_->Disconnect(index); !r && r.error().code != ENOENT) {
      restore_state();
      return r;
    }
  }
  std::lock_guard lock(mu_);
  devices_.erase(index);
  ForgetParkedSecrets(e->record);
  spdlog::info("unmapped {} from {}", e->record.spec, path);
  return SaveLocked();
}

Result<DeviceManager::Served> DeviceManager::AttachWork(const DeviceRecord& r, std::shared_ptr<DeviceIoStats> io_stats,
                                                       bool* image_gone) {
  *image_gone = false;
  if (!nl_) return Err(ENOTSUP, "reattaching {} needs the nbd netlink interface", DevicePath(r.index));
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
      spdlog::warn("/dev/nbd{}: {} (lock takeover waits for the old watch to expire)", r.index, f.error().message);
    } else {
      spdlog::info("/dev/nbd{}: fenced the previous daemon's client {}", r.index, r.client_addr);
    }
  }
  auto backend = OpenBackend(r, req->cluster, req->image, image_gone);
  if (!backend) return Unexpected(backend.error());
  req->device.on_lost = on_image_update_;
  auto dev = KernelDevice::Attach(*nl_, loops_, Export{r.spec, "", *backend, std::move(io_stats)}, r.index,
                                  req->device);
  if (!dev) return Unexpected(dev.error());
  Served s;
  s.quiesce = RbdQuiesceWatch::StartOrWarn(*backend, DevicePath(r.index), quiesce_options_);
  s.client_addr = (*backend)->cluster()->Address();
  s.backend = std::move(backend).value();
  s.device = std::move(dev).value();
  return s;
}

Result<MappedInfo> DeviceManager::Attach(const DeviceRecord& record) {
  ScopedLogFields log_fields(DevicePath(record.index), record.spec);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Err(ESHUTDOWN, "the daemon is stopping");
    if (devices_.count(record.index) || reserved_indexes_.count(record.index)) {
      return Err(EBUSY, "{} is already attached", DevicePath(record.index));
    }
    reserved_indexes_.insert(record.index);
  }
  bool image_gone = false;
  auto io_stats = DeviceIoStats::Create();
  auto served = AttachWork(record, io_stats, &image_gone);
  std::lock_guard lock(mu_);
  reserved_indexes_.erase(record.index);
  if (!served) return Unexpected(served.error());
  auto e = std::make_shared<Entry>();
  e->record = record;
  e->io_stats = std::move(io_stats);
  e->record.client_addr = served->client_addr;
  e->backend = std::move(served->backend);
  e->device = std::move(served->device);
  e->quiesce = std::move(served->quiesce);
  devices_[record.index] = e;
  detached_.erase(record.index);
  spdlog::info("attached {} at {}", record.spec, DevicePath(record.index));
  if (auto s = SaveLocked(); !s) return Unexpected(s.error());
  return InfoOf(*e);
}

Result<void> DeviceManager::Detach(const std::string& target) {
  std::shared_ptr<Entry> e;
  {
    std::lock_guard lock(mu_);
    e = Find(target);
    if (e == nullptr) return Err(ENOENT, "{} is not mapped by this daemon", target);
    if (e->state == State::kUnmapping) return Err(EBUSY, "{} is being unmapped", DevicePath(e->record.index));
    // The record stays in the state file: `attach` or the next daemon takes it back.
    detached_[e->record.index] = e->record;
    devices_.erase(e->record.index);
    e->state = State::kUnmapping;  // a reattach worker stops at its next look
  }
  cv_.notify_all();
  e->quiesce.reset();  // thawed before the device is left to the kernel
  if (e->device) e->device->Detach();
  spdlog::info("detached {}; the kernel keeps it", DevicePath(e->record.index));
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
  for (const auto& [index, e] : devices_) {
    e->vitals.Observe(e->io_stats->Snapshot(), StateOf(*e) == api::DeviceState::kReattaching, now);
    MappedInfo info = InfoOf(*e);
    if (status.has_value()) info.kernel_connected = Connected(*status, index);
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<bool> DeviceManager::KernelHolds(uint32_t index) {
  if (!nl_) return std::nullopt;
  auto status = nl_->Status(index);
  if (!status) {
    if (status.error().code == ENOENT || status.error().code == ENODEV) return false;
    return std::nullopt;
  }
  return Connected(*status, index);
}

void DeviceManager::ForgetLocked(uint32_t index, const char* why) {
  auto it = devices_.find(index);
  if (it == devices_.end()) return;
  spdlog::warn("forgetting {} at {}: {}", it->second->record.spec, DevicePath(index), why);
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
  const uint32_t index = e->record.index;
  ScopedLogFields log_fields(DevicePath(index), e->record.spec);
  auto backoff = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
  std::unique_lock lock(mu_);
  while (!stopping_ && e->state == State::kReattaching) {
    DeviceRecord record = e->record;
    std::shared_ptr<DeviceIoStats> io_stats = e->io_stats;
    lock.unlock();
    std::optional<bool> holds = KernelHolds(index);
    bool image_gone = false;
    Result<Served> served = Err(ENODEV, "the kernel no longer holds the device");
    if (holds != false) served = AttachWork(record, std::move(io_stats), &image_gone);
    lock.lock();
    if (stopping_ || e->state != State::kReattaching) {
      // Unmapped, detached or stopping while we tried: let go of what we got.
      if (served) {
        lock.unlock();
        served->quiesce.reset();
        served->device->Detach();
        lock.lock();
      }
      break;
    }
    e->first_try_done = true;
    cv_.notify_all();
    if (served) {
      e->backend = std::move(served->backend);
      e->device = std::move(served->device);
      e->quiesce = std::move(served->quiesce);
      e->record.client_addr = served->client_addr;
      e->state = State::kMapped;
      e->last_error.clear();
      e->vitals.LeaveStall(MonotonicNowNs());
      spdlog::info("attached {} at {}{}", record.spec, DevicePath(index),
                   e->attempts > 0 ? fmt::format(" after {} failed attempt(s)", e->attempts) : "");
      if (auto s = SaveLocked(); !s) spdlog::error("{}", s.error().message);
      break;
    }
    if (holds == false) {
      ForgetLocked(index, "the kernel no longer holds the device (unmapped elsewhere, or its reattach window ended)");
      break;
    }
    if (image_gone) {
      std::string why = served.error().message;
      ForgetLocked(index, "the image is gone; disconnecting the device so that its I/O fails now");
      spdlog::error("{}: {}", DevicePath(index), why);
      lock.unlock();
      if (auto d = nl_->Disconnect(index); !d) spdlog::error("{}", d.error().message);
      lock.lock();
      break;
    }
    e->attempts++;
    SetErrorLocked(*e, served.error().message);
    spdlog::warn("cannot reattach {} at {} yet (attempt {}; the kernel holds its I/O): {}; retrying in {} ms",
                 record.spec, DevicePath(index), e->attempts, e->last_error, backoff.count());
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
      if (devices_.count(r.index)) continue;
      if (!nl_) {
        spdlog::error("cannot reattach {} at {} without the nbd netlink interface; forgetting it", r.spec,
                      DevicePath(r.index));
        ForgetParkedSecrets(r);
        continue;
      }
      auto e = std::make_shared<Entry>();
      e->record = r;
      e->state = State::kReattaching;
      e->vitals.EnterStall(MonotonicNowNs());  // the kernel holds its I/O until a worker serves it
      devices_[r.index] = e;
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
  std::map<uint32_t, std::shared_ptr<Entry>> devices;
  {
    std::lock_guard lock(mu_);
    devices.swap(devices_);  // the state file still lists them for the next daemon
  }
  for (auto& [index, e] : devices) {
    e->quiesce.reset();  // SIGTERM: nothing stays frozen behind the daemon
    if (e->device) e->device->Detach();
  }
}

void DeviceManager::OnLinkDead(uint32_t index) {
  if (!nl_) return;
  std::lock_guard lock(mu_);
  auto it = devices_.find(index);
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
  std::vector<uint32_t> dropped;
  for (auto& [index, ep] : devices_) {
    Entry& e = *ep;
    if (e.state != State::kMapped || !e.device) continue;
    if (e.device->live_connections() < e.record.connections) {
      bool held = !status.has_value() || Connected(*status, index);
      if (!held && e.device->live_connections() == 0) {
        dropped.push_back(index);
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
  for (uint32_t index : dropped) {
    retired.push_back(std::move(devices_[index]->quiesce));
    devices_[index]->device->Detach();
    ForgetLocked(index, "the kernel no longer holds the device (unmapped elsewhere, or its reattach window ended)");
  }
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
    for (auto& [index, e] : devices_) {
      api::DeviceState state = StateOf(*e);
      m.devices_by_state[static_cast<size_t>(state)]++;
      DeviceSample d;
      d.io = e->io_stats->Snapshot();
      e->vitals.Observe(d.io, state == api::DeviceState::kReattaching, now);
      d.labels.device = "nbd" + std::to_string(index);
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
