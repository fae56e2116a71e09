#include "fake_ceph_store.h"

#include <cerrno>

#include <fmt/format.h>

namespace rbdnbd::csi::testing {

class FakeSession final : public CephSession {
 public:
  FakeSession(FakeCephStore* store, CephTarget target) : store_(store), target_(std::move(target)) {}

  Result<ImageInfo> Stat(const std::string& image) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("Stat")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    ImageInfo info;
    info.name = image;
    info.id = img->id;
    info.size_bytes = img->size;
    info.features = img->features;
    info.data_pool = img->data_pool;
    info.metadata = img->metadata;
    info.clone_depth = img->depth;
    return info;
  }

  Result<void> Create(const NewImage& image) override {
    store_->RunBeforeOnce("Create");
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("Create")) return *e;
    if (Find(image.name) != nullptr) return Err(EEXIST, "image {} exists", image.name);
    if (!image.data_pool.empty() && store_->pools_.count(FakeCephStore::PoolKey(image.data_pool, "")) == 0) {
      return Err(ENOENT, "data pool {} does not exist", image.data_pool);
    }
    FakeCephStore::Image img;
    img.id = fmt::format("id{}", store_->next_id_++);
    img.size = image.size_bytes;
    img.features = image.features;
    img.data_pool = image.data_pool;
    img.object_size = image.object_size;
    img.metadata = image.metadata;
    Pool().images[image.name] = img;
    store_->creates_++;
    return {};
  }

  Result<void> Clone(CephSession& src, const std::string& src_image, const std::string& src_snap,
                     const NewImage& image) override {
    store_->RunBeforeOnce("Clone");
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("Clone")) return *e;
    auto& source = dynamic_cast<FakeSession&>(src);
    auto* parent = source.Find(src_image);
    if (parent == nullptr) return Err(ENOENT, "image {} not found", src_image);
    auto snap = parent->snaps.find(src_snap);
    if (snap == parent->snaps.end() || snap->second.trashed) return Err(ENOENT, "snapshot {}@{} not found", src_image, src_snap);
    if (Find(image.name) != nullptr) return Err(EEXIST, "image {} exists", image.name);
    FakeCephStore::Image img;
    img.id = fmt::format("id{}", store_->next_id_++);
    img.size = std::max(image.size_bytes, snap->second.size);
    img.features = image.features;
    img.data_pool = image.data_pool;
    img.metadata = image.metadata;
    img.parent = FakeCephStore::Parent{source.Key(), src_image, snap->second.id};
    img.depth = parent->depth + 1;
    img.luks = parent->luks;
    snap->second.children++;
    Pool().images[image.name] = img;
    store_->creates_++;
    return {};
  }

  Result<void> Resize(const std::string& image, uint64_t size_bytes) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("Resize")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    img->size = size_bytes;
    return {};
  }

  Result<void> FormatLuks(const std::string& image, LuksFormat format, const Secret& passphrase) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("FormatLuks")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    if (passphrase.empty()) return Err(EINVAL, "empty passphrase");
    img->luks = format == LuksFormat::kLuks1 ? "luks1" : "luks2";
    return {};
  }

  Result<void> Flatten(const std::string& image) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("Flatten")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    Detach(*img);
    return {};
  }

  Result<RemoveOutcome> Remove(const std::string& image) override { return RemoveImage("Remove", image, true); }

  Result<RemoveOutcome> RemoveNew(const std::string& image) override {
    return RemoveImage("RemoveNew", image, false);
  }

  Result<int> PurgeTrash(const std::string& name_prefix) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("PurgeTrash")) return *e;
    int purged = 0;
    for (bool again = true; again;) {
      again = false;
      for (auto& [key, pool] : store_->pools_) {
        for (auto it = pool.trash.begin(); it != pool.trash.end();) {
          if (it->first.rfind(name_prefix, 0) == 0 && it->second.snaps.empty() && key == Key()) {
            Detach(it->second);
            it = pool.trash.erase(it);
            ++purged;
            again = true;
          } else {
            ++it;
          }
        }
      }
    }
    return purged;
  }

  Result<int> CountTrash(const std::string& name_prefix) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("CountTrash")) return *e;
    int n = 0;
    for (const auto& [name, img] : Pool().trash) n += name.rfind(name_prefix, 0) == 0 ? 1 : 0;
    return n;
  }

  Result<SnapInfo> CreateSnapshot(const std::string& image, const std::string& snap, QuiesceMode quiesce) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("CreateSnapshot")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    if (img->snaps.count(snap) != 0) return Err(EEXIST, "snapshot {}@{} exists", image, snap);
    bool quiesce_failed = false;
    if (quiesce != QuiesceMode::kSkip && store_->quiesce_fails_ && img->watchers > 0) {
      if (quiesce == QuiesceMode::kRequired) return Err(EIO, "a watcher of {} failed to quiesce", image);
      quiesce_failed = true;
    }
    FakeCephStore::Snap s;
    s.id = store_->next_id_++;
    s.size = img->size;
    s.created = 1700000000 + static_cast<int64_t>(s.id);
    img->snaps[snap] = s;
    return SnapInfo{image, snap, s.id, s.size, s.created, 500, quiesce_failed};
  }

  Result<SnapInfo> StatSnapshot(const std::string& image, const std::string& snap) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("StatSnapshot")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    auto it = img->snaps.find(snap);
    if (it == img->snaps.end() || it->second.trashed) return Err(ENOENT, "snapshot {}@{} not found", image, snap);
    return SnapInfo{image, snap, it->second.id, it->second.size, it->second.created, 500, false};
  }

  Result<std::vector<std::string>> SnapshotNames(const std::string& image) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("SnapshotNames")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    std::vector<std::string> names;
    for (const auto& [name, snap] : img->snaps) {
      if (!snap.trashed) names.push_back(name);
    }
    return names;
  }

  Result<void> RemoveSnapshot(const std::string& image, const std::string& snap) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("RemoveSnapshot")) return *e;
    auto* img = Find(image);
    if (img == nullptr) return Err(ENOENT, "image {} not found", image);
    auto it = img->snaps.find(snap);
    if (it == img->snaps.end() || it->second.trashed) return Err(ENOENT, "snapshot {}@{} not found", image, snap);
    if (it->second.children > 0) {
      // Clone v2: into the trash namespace, under a name no caller uses.
      FakeCephStore::Snap s = it->second;
      s.trashed = true;
      img->snaps.erase(it);
      img->snaps[fmt::format("trash-{}", s.id)] = s;
    } else {
      img->snaps.erase(it);
    }
    return {};
  }

  Result<std::optional<std::string>> JournalGet(const std::string& object, const std::string& key) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("JournalGet")) return *e;
    auto& j = Pool().journals[object];
    auto it = j.find(key);
    if (it == j.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Result<std::string> JournalReserve(const std::string& object, const std::string& key,
                                     const std::string& value) override {
    std::function<void()> hook;
    {
      std::lock_guard lock(store_->mu_);
      hook = store_->on_reserve_;
    }
    if (hook) hook();
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("JournalReserve")) return *e;
    auto& j = Pool().journals[object];
    auto [it, inserted] = j.emplace(key, value);
    return it->second;
  }

  Result<void> JournalSwap(const std::string& object, const std::string& key, const std::string& expected,
                           const std::string& value) override {
    store_->RunBeforeOnce("JournalSwap");
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("JournalSwap")) return *e;
    auto& j = Pool().journals[object];
    auto it = j.find(key);
    if (it == j.end() || it->second != expected) return Err(ECANCELED, "journal key {} changed meanwhile", key);
    it->second = value;
    return {};
  }

  Result<bool> JournalRemove(const std::string& object, const std::string& key, const std::string& expected) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("JournalRemove")) return *e;
    auto& journals = Pool().journals;
    auto j = journals.find(object);
    if (j == journals.end()) return false;
    auto it = j->second.find(key);
    if (it == j->second.end()) return false;
    if (it->second != expected) return Err(ECANCELED, "journal key {} changed meanwhile", key);
    j->second.erase(it);
    return true;
  }

  Result<std::vector<std::pair<std::string, std::string>>> JournalList(const std::string& object,
                                                                        const std::string& prefix,
                                                                        const std::string& after, size_t max) override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("JournalList")) return *e;
    std::vector<std::pair<std::string, std::string>> out;
    auto& j = Pool().journals[object];
    for (auto it = j.upper_bound(after); it != j.end() && out.size() < max; ++it) {
      if (it->first.rfind(prefix, 0) == 0) out.emplace_back(it->first, it->second);
    }
    return out;
  }

  Result<uint64_t> AvailableBytes() override {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check("AvailableBytes")) return *e;
    return store_->available_;
  }

  std::string Key() const { return FakeCephStore::PoolKey(target_.pool, target_.ns); }

 private:
  // Remove() (`may_trash`: an image with snapshots goes to the trash) and
  // RemoveNew() (it is ENOTEMPTY instead); `method` names the failure to inject.
  Result<RemoveOutcome> RemoveImage(const std::string& method, const std::string& image, bool may_trash) {
    std::lock_guard lock(store_->mu_);
    if (auto e = Check(method)) return *e;
    auto& pool = Pool();
    auto it = pool.images.find(image);
    if (it == pool.images.end()) return RemoveOutcome::kNotFound;
    if (it->second.watchers > 0) return Err(EBUSY, "image {} has {} watchers", image, it->second.watchers);
    if (!it->second.snaps.empty()) {
      if (!may_trash) return Err(ENOTEMPTY, "image {} has snapshots", image);
      pool.trash[image] = std::move(it->second);
      pool.images.erase(it);
      return RemoveOutcome::kTrashed;
    }
    Detach(it->second);
    pool.images.erase(it);
    return RemoveOutcome::kRemoved;
  }

  // Under mu_: an injected failure, or the pool's absence.
  std::optional<Unexpected> Check(const std::string& method) {
    if (auto it = store_->failures_.find(method); it != store_->failures_.end() && it->second != 0) {
      return Unexpected(Error{it->second, fmt::format("injected failure of {}", method)});
    }
    if (store_->pools_.count(Key()) == 0) {
      return Unexpected(Error{ENOENT, fmt::format("pool {} namespace '{}' does not exist", target_.pool, target_.ns)});
    }
    return std::nullopt;
  }
  FakeCephStore::PoolState& Pool() { return store_->pools_[Key()]; }
  FakeCephStore::Image* Find(const std::string& image) {
    auto& images = Pool().images;
    auto it = images.find(image);
    return it == images.end() ? nullptr : &it->second;
  }
  // Under mu_: drops `img`'s link to its parent snapshot; a trashed parent
  // snapshot goes with its last child.
  void Detach(FakeCephStore::Image& img) {
    if (!img.parent) return;
    auto& pool = store_->pools_[img.parent->pool_key];
    FakeCephStore::Image* parent = nullptr;
    if (auto it = pool.images.find(img.parent->image); it != pool.images.end()) parent = &it->second;
    if (auto it = pool.trash.find(img.parent->image); parent == nullptr && it != pool.trash.end()) parent = &it->second;
    if (parent != nullptr) {
      for (auto it = parent->snaps.begin(); it != parent->snaps.end(); ++it) {
        if (it->second.id != img.parent->snap_id) continue;
        it->second.children--;
        if (it->second.trashed && it->second.children == 0) parent->snaps.erase(it);
        break;
      }
    }
    img.parent.reset();
    img.depth = 0;
  }

  FakeCephStore* store_;
  CephTarget target_;
};

FakeCephStore::FakeCephStore() { mon_hosts_.insert(kMonitors); }

Result<std::unique_ptr<CephSession>> FakeCephStore::Open(const CephTarget& target, const CephUser& user) {
  std::lock_guard lock(mu_);
  if (auto it = failures_.find("Open"); it != failures_.end() && it->second != 0) {
    return Err(it->second, "injected failure of Open");
  }
  if (mon_hosts_.count(target.mon_host) == 0) {
    return Err(ETIMEDOUT, "monitors {} did not answer within {} s", target.mon_host, user.connect_timeout.count());
  }
  auto it = users_.find(user.client_name);
  if (it == users_.end() || it->second != user.key.reveal()) {
    return Err(EACCES, "cephx refused {}", user.client_name);
  }
  opens_++;
  return std::unique_ptr<CephSession>(new FakeSession(this, target));
}

void FakeCephStore::AddPool(const std::string& pool, const std::string& ns) {
  std::lock_guard lock(mu_);
  pools_[PoolKey(pool, ns)];
}

void FakeCephStore::AddUser(const std::string& client_name, const std::string& key) {
  std::lock_guard lock(mu_);
  users_[client_name] = key;
}

void FakeCephStore::AddReachableMonitors(const std::string& mon_host) {
  std::lock_guard lock(mu_);
  mon_hosts_.insert(mon_host);
}

void FakeCephStore::Fail(const std::string& method, int code) {
  std::lock_guard lock(mu_);
  failures_[method] = code;
}

void FakeCephStore::OnReserve(std::function<void()> hook) {
  std::lock_guard lock(mu_);
  on_reserve_ = std::move(hook);
}

void FakeCephStore::BeforeOnce(const std::string& method, std::function<void()> hook) {
  std::lock_guard lock(mu_);
  before_once_[method] = std::move(hook);
}

void FakeCephStore::RunBeforeOnce(const std::string& method) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu_);
    auto it = before_once_.find(method);
    if (it == before_once_.end()) return;
    hook = std::move(it->second);
    before_once_.erase(it);
  }
  hook();
}

void FakeCephStore::SetQuiesceFails(bool fails) {
  std::lock_guard lock(mu_);
  quiesce_fails_ = fails;
}

void FakeCephStore::SetAvailable(uint64_t bytes) {
  std::lock_guard lock(mu_);
  available_ = bytes;
}

std::optional<FakeCephStore::Image> FakeCephStore::GetImage(const std::string& pool, const std::string& ns,
                                                            const std::string& name) {
  std::lock_guard lock(mu_);
  auto p = pools_.find(PoolKey(pool, ns));
  if (p == pools_.end()) return std::nullopt;
  auto it = p->second.images.find(name);
  if (it == p->second.images.end()) return std::nullopt;
  return it->second;
}

void FakeCephStore::SetWatchers(const std::string& pool, const std::string& ns, const std::string& name, int watchers) {
  std::lock_guard lock(mu_);
  pools_[PoolKey(pool, ns)].images.at(name).watchers = watchers;
}

std::vector<std::string> FakeCephStore::Images(const std::string& pool, const std::string& ns) {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  auto p = pools_.find(PoolKey(pool, ns));
  if (p == pools_.end()) return out;
  for (const auto& [name, img] : p->second.images) out.push_back(name);
  return out;
}

int FakeCephStore::TrashCount(const std::string& pool, const std::string& ns) {
  std::lock_guard lock(mu_);
  auto p = pools_.find(PoolKey(pool, ns));
  return p == pools_.end() ? 0 : static_cast<int>(p->second.trash.size());
}

std::map<std::string, std::string> FakeCephStore::Journal(const std::string& pool, const std::string& ns,
                                                          const std::string& object) {
  std::lock_guard lock(mu_);
  auto p = pools_.find(PoolKey(pool, ns));
  if (p == pools_.end()) return {};
  auto j = p->second.journals.find(object);
  return j == p->second.journals.end() ? std::map<std::string, std::string>{} : j->second;
}

void FakeCephStore::PutJournal(const std::string& pool, const std::string& ns, const std::string& object,
                               const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  pools_[PoolKey(pool, ns)].journals[object][key] = value;
}

}  // namespace rbdnbd::csi::testing
