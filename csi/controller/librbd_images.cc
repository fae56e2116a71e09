// LibrbdSession: images (stat, create, clone, resize, LUKS, flatten, remove,
// the trash).
#include <bit>
#include <vector>

#include <spdlog/spdlog.h>

#include "csi/controller/librbd_cls.h"
#include "csi/controller/librbd_session.h"
#include "csi/controller/librbd_util.h"

namespace rbdnbd::csi {
namespace {

constexpr uint64_t kMinObjectSize = 4096;
constexpr uint64_t kMaxObjectSize = 32ull << 20;
constexpr std::string_view kCsiMetaPrefix = "csi.";
// A parent chain longer than this is a loop or a broken cluster.
constexpr uint32_t kMaxParentWalk = 64;

// The options of a new image or clone from `image` (features exactly as
// given; order from the object size; data pool).
Result<void> FillOptions(const NewImage& image, ImageOptions* opts) {
  // librbd refuses the other broken sets itself, but drops fast-diff without
  // object-map silently: the image would not get the features asked for.
  if ((image.features & RBD_FEATURE_FAST_DIFF) != 0 && (image.features & RBD_FEATURE_OBJECT_MAP) == 0) {
    return Err(EINVAL, "image '{}': feature fast-diff needs object-map", image.name);
  }
  if (auto s = opts->Set(RBD_IMAGE_OPTION_FORMAT, 2); !s) return s;
  if (auto s = opts->Set(RBD_IMAGE_OPTION_FEATURES, image.features); !s) return s;
  if (image.object_size != 0) {
    if (!std::has_single_bit(image.object_size) || image.object_size < kMinObjectSize ||
        image.object_size > kMaxObjectSize) {
      return Err(EINVAL, "object size {} for image '{}' is not a power of two from 4 KiB to 32 MiB",
                 image.object_size, image.name);
    }
    if (auto s = opts->Set(RBD_IMAGE_OPTION_ORDER, static_cast<uint64_t>(std::countr_zero(image.object_size))); !s) {
      return s;
    }
  }
  if (!image.data_pool.empty()) {
    if (auto s = opts->Set(RBD_IMAGE_OPTION_DATA_POOL, image.data_pool); !s) return s;
  }
  return {};
}

Result<void> SetMetadata(rbd_image_t img, const std::map<std::string, std::string>& metadata,
                         const std::string& spec) {
  for (const auto& [k, v] : metadata) {
    if (int r = rbd_metadata_set(img, k.c_str(), v.c_str()); r < 0) {
      return Err(-r, "cannot set metadata '{}' on image '{}': {}", k, spec, Why(r));
    }
  }
  return {};
}

// Only "csi.*" keys: librbd gives other keys meanings ("conf_*" overrides the
// image's config, and rbd_metadata_set validates those), which the cls write
// would store unchecked. No NUL either: librbd's C API reads values back as C
// strings. Checked after the image is made, so that a refusal goes the same
// rollback path as every other failed write.
Result<void> CheckMetadata(const std::map<std::string, std::string>& metadata, const std::string& spec) {
  for (const auto& [k, v] : metadata) {
    if (!k.starts_with(kCsiMetaPrefix) || k.size() == kCsiMetaPrefix.size()) {
      return Err(EINVAL, "image '{}': metadata key '{}' does not start with '{}'", spec, k, kCsiMetaPrefix);
    }
    if (k.find('\0') != std::string::npos || v.find('\0') != std::string::npos) {
      return Err(EINVAL, "image '{}': metadata '{}' holds a NUL byte", spec, k);
    }
  }
  return {};
}

// Sets the metadata of the image `name` that this session just made and that
// nobody has open. `img`: the image if the caller has it open read-write
// already (nullptr: not open). With journaling, through librbd (the journal
// then records it, for mirror peers; see librbd_cls.h); else one cls write,
// without the open, lock and close librbd needs.
Result<void> SetNewImageMetadata(rados_ioctx_t io, const NewImage& image, const std::string* id, rbd_image_t img,
                                 const std::string& spec) {
  if (image.metadata.empty()) return {};
  if (auto c = CheckMetadata(image.metadata, spec); !c) return c;
  if ((image.features & RBD_FEATURE_JOURNALING) != 0) {
    if (img != nullptr) return SetMetadata(img, image.metadata, spec);
    auto opened = OpenImage(io, image.name, OpenMode::kReadWrite, spec);
    if (!opened) return Unexpected(opened.error());
    return SetMetadata(opened->get(), image.metadata, spec);
  }
  if (id != nullptr) return cls::SetMetadata(io, *id, image.metadata, spec);
  auto got = cls::ImageId(io, image.name, spec);
  if (!got) return Unexpected(got.error());
  return cls::SetMetadata(io, *got, image.metadata, spec);
}

// The image's metadata whose keys start with "csi.".
Result<std::map<std::string, std::string>> CsiMetadata(rbd_image_t img, const std::string& spec) {
  std::map<std::string, std::string> out;
  std::string start(kCsiMetaPrefix.substr(0, kCsiMetaPrefix.size() - 1));  // "csi": every "csi.*" sorts after it
  std::vector<char> keys(4096), vals(16384);
  constexpr uint64_t kBatch = 64;
  for (;;) {
    size_t klen = keys.size(), vlen = vals.size();
    int r = rbd_metadata_list(img, start.c_str(), kBatch, keys.data(), &klen, vals.data(), &vlen);
    if (r == -ERANGE) {
      keys.resize(std::max(klen, keys.size() * 2));
      vals.resize(std::max(vlen, vals.size() * 2));
      continue;
    }
    if (r < 0) return Err(-r, "cannot list the metadata of image '{}': {}", spec, Why(r));
    // Both buffers hold klen/vlen bytes of NUL-terminated strings, pairwise.
    size_t ki = 0, vi = 0, n = 0;
    bool past_prefix = false;
    while (ki < klen && keys[ki] != '\0') {
      std::string k(&keys[ki]);
      std::string v(vi < vlen ? &vals[vi] : "");
      ki += k.size() + 1;
      vi += v.size() + 1;
      ++n;
      start = k;
      if (!k.starts_with(kCsiMetaPrefix)) {
        if (k > kCsiMetaPrefix) past_prefix = true;
        continue;
      }
      out.emplace(std::move(k), std::move(v));
    }
    if (past_prefix || n < kBatch) return out;
  }
}

}  // namespace

Result<uint32_t> LibrbdSession::CloneDepth(rbd_image_t img, const std::string& image) {
  uint32_t depth = 0;
  ImageHandle parent_handle;  // the current link of the chain, once above `img`
  rbd_image_t cur = img;
  for (;;) {
    rbd_linked_image_spec_t parent{};
    rbd_snap_spec_t snap{};
    int r = rbd_get_parent(cur, &parent, &snap);
    if (r == -ENOENT) return depth;
    if (r < 0) return Err(-r, "cannot read the parent of image '{}' (level {}): {}", Spec(image), depth, Why(r));
    if (++depth > kMaxParentWalk) {
      rbd_linked_image_spec_cleanup(&parent);
      rbd_snap_spec_cleanup(&snap);
      return Err(ELOOP, "image '{}' has more than {} parents", Spec(image), kMaxParentWalk);
    }
    // The parent's own parent as of the snapshot the child hangs off (the
    // parent may be in the trash: open it by id).
    rados_ioctx_t pio = nullptr;
    r = rados_ioctx_create(cluster_->handle(), parent.pool_name, &pio);
    std::string where = fmt::format("{}/{}", parent.pool_name, parent.image_name);
    if (r == 0) {
      rados_ioctx_set_namespace(pio, parent.pool_namespace);
      rbd_image_t h = nullptr;
      r = rbd_open_by_id_read_only(pio, parent.image_id, &h, nullptr);
      if (r == 0) {
        parent_handle = ImageHandle(h);
        r = rbd_snap_set_by_id(h, snap.id);
      }
      rados_ioctx_destroy(pio);  // librbd keeps its own copy of the ioctx
    }
    rbd_linked_image_spec_cleanup(&parent);
    rbd_snap_spec_cleanup(&snap);
    if (r < 0) return Err(-r, "cannot open parent '{}' of image '{}': {}", where, Spec(image), Why(r));
    cur = parent_handle.get();
  }
}

Result<ImageInfo> LibrbdSession::Stat(const std::string& image) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  auto img = OpenImage(*io, image, OpenMode::kReadOnly, Spec(image));
  if (!img) return Unexpected(img.error());
  ImageInfo info;
  info.name = image;
  rbd_image_info_t st{};
  if (int r = rbd_stat(img->get(), &st, sizeof(st)); r < 0) {
    return Err(-r, "cannot stat image '{}': {}", Spec(image), Why(r));
  }
  info.size_bytes = st.size;
  if (int r = rbd_get_features(img->get(), &info.features); r < 0) {
    return Err(-r, "cannot read the features of image '{}': {}", Spec(image), Why(r));
  }
  // Without librbd's own bookkeeping bits (a clone v2 gets "operations"): the
  // features are what was asked for at creation.
  info.features &= ~static_cast<uint64_t>(RBD_FEATURES_INTERNAL);
  char id[64] = "";
  if (int r = rbd_get_id(img->get(), id, sizeof(id)); r < 0) {
    return Err(-r, "cannot read the id of image '{}': {}", Spec(image), Why(r));
  }
  info.id = id;
  int64_t data_pool = rbd_get_data_pool_id(img->get());
  if (data_pool >= 0 && data_pool != rados_ioctx_get_id(*io)) {
    char name[256] = "";
    int r = rados_pool_reverse_lookup(cluster_->handle(), data_pool, name, sizeof(name));
    info.data_pool = r < 0 ? std::to_string(data_pool) : std::string(name);
  }
  auto meta = CsiMetadata(img->get(), Spec(image));
  if (!meta) return Unexpected(meta.error());
  info.metadata = std::move(*meta);
  auto depth = CloneDepth(img->get(), image);
  if (!depth) return Unexpected(depth.error());
  info.clone_depth = *depth;
  return info;
}

Result<void> LibrbdSession::Create(const NewImage& image) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  ImageOptions opts;
  if (auto s = FillOptions(image, &opts); !s) return s;
  std::string spec = Spec(image.name);
  int r = rbd_create4(*io, image.name.c_str(), image.size_bytes, opts.get());
  if (r == -EEXIST) return Err(EEXIST, "image '{}' exists already", spec);
  if (r == -ENOENT && !image.data_pool.empty()) return Err(ENOENT, "data pool '{}' does not exist", image.data_pool);
  if (r < 0) {
    return Err(-r, "cannot create image '{}' ({} bytes, features {:#x}{}{}): {}", spec, image.size_bytes,
               image.features, image.data_pool.empty() ? "" : ", data pool ", image.data_pool, Why(r));
  }
  if (auto set = SetNewImageMetadata(*io, image, nullptr, nullptr, spec); !set) {
    // Nothing half made is left behind: the caller retries from scratch.
    if (int rr = rbd_remove(*io, image.name.c_str()); rr < 0) {
      spdlog::warn("cannot remove the half-made image '{}': {}", spec, Why(rr));
    }
    return set;
  }
  return {};
}

Result<void> LibrbdSession::Clone(CephSession& src, const std::string& src_image, const std::string& src_snap,
                                  const NewImage& image) {
  auto* from = dynamic_cast<LibrbdSession*>(&src);
  if (from == nullptr || from->cluster_handle() != cluster_handle()) {
    return Err(EINVAL, "cannot clone '{}@{}': the source session is not on this connection", src_image, src_snap);
  }
  auto src_io = from->Io();
  if (!src_io) return Unexpected(src_io.error());
  auto io = Io();
  if (!io) return Unexpected(io.error());
  ImageOptions opts;
  if (auto s = FillOptions(image, &opts); !s) return s;
  if (auto s = opts.Set(RBD_IMAGE_OPTION_CLONE_FORMAT, 2); !s) return s;
  std::string spec = Spec(image.name);
  std::string src_spec = fmt::format("{}@{}", from->Spec(src_image), src_snap);
  int r = rbd_clone3(*src_io, src_image.c_str(), src_snap.c_str(), *io, image.name.c_str(), opts.get());
  if (r == -EEXIST) return Err(EEXIST, "image '{}' exists already", spec);
  if (r == -ENOENT) return Err(ENOENT, "cannot clone '{}' as '{}': no such image or snapshot", src_spec, spec);
  if (r < 0) return Err(-r, "cannot clone '{}' as '{}' (features {:#x}): {}", src_spec, spec, image.features, Why(r));

  Result<void> done = [&]() -> Result<void> {
    // The size from the header: the clone is opened only when it must grow.
    auto id = cls::ImageId(*io, image.name, spec);
    if (!id) return Unexpected(id.error());
    auto size = cls::HeadSize(*io, *id, spec);
    if (!size) return Unexpected(size.error());
    if (image.size_bytes != 0 && image.size_bytes < *size) {
      return Err(EINVAL, "clone '{}' cannot be {} bytes: smaller than its snapshot '{}' ({} bytes)", spec,
                 image.size_bytes, src_spec, *size);
    }
    if (image.size_bytes > *size) {
      auto img = OpenImage(*io, image.name, OpenMode::kReadWrite, spec);
      if (!img) return Unexpected(img.error());
      if (int rr = rbd_resize2(img->get(), image.size_bytes, false, NoProgress, nullptr); rr < 0) {
        return Err(-rr, "cannot grow clone '{}' to {} bytes: {}", spec, image.size_bytes, Why(rr));
      }
      // With journaling the metadata goes through this handle (journaled).
      if ((image.features & RBD_FEATURE_JOURNALING) != 0) {
        return SetNewImageMetadata(*io, image, &*id, img->get(), spec);
      }
    }
    // Closed by now: the cls write does not race librbd's lock release.
    return SetNewImageMetadata(*io, image, &*id, nullptr, spec);
  }();
  if (!done) {
    if (int rr = rbd_remove(*io, image.name.c_str()); rr < 0) {
      spdlog::warn("cannot remove the half-made clone '{}': {}", spec, Why(rr));
    }
    return done;
  }
  return {};
}

Result<void> LibrbdSession::Resize(const std::string& image, uint64_t size_bytes) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  auto img = OpenImage(*io, image, OpenMode::kReadWrite, Spec(image));
  if (!img) return Unexpected(img.error());
  uint64_t size = 0;
  if (int r = rbd_get_size(img->get(), &size); r < 0) {
    return Err(-r, "cannot read the size of image '{}': {}", Spec(image), Why(r));
  }
  if (size_bytes == size) return {};
  if (size_bytes < size) {
    return Err(EINVAL, "refusing to shrink image '{}' from {} to {} bytes", Spec(image), size, size_bytes);
  }
  if (int r = rbd_resize2(img->get(), size_bytes, false, NoProgress, nullptr); r < 0) {
    return Err(-r, "cannot grow image '{}' to {} bytes: {}", Spec(image), size_bytes, Why(r));
  }
  return {};
}

Result<void> LibrbdSession::FormatLuks(const std::string& image, LuksFormat format, const Secret& passphrase) {
  if (passphrase.empty()) return Err(EINVAL, "no passphrase for the LUKS header of image '{}'", Spec(image));
  auto io = Io();
  if (!io) return Unexpected(io.error());
  auto img = OpenImage(*io, image, OpenMode::kReadWrite, Spec(image));
  if (!img) return Unexpected(img.error());
  const std::string& p = passphrase.reveal();
  int r;
  if (format == LuksFormat::kLuks1) {
    rbd_encryption_luks1_format_options_t o{RBD_ENCRYPTION_ALGORITHM_AES256, p.data(), p.size()};
    r = rbd_encryption_format(img->get(), RBD_ENCRYPTION_FORMAT_LUKS1, &o, sizeof(o));
  } else {
    rbd_encryption_luks2_format_options_t o{RBD_ENCRYPTION_ALGORITHM_AES256, p.data(), p.size()};
    r = rbd_encryption_format(img->get(), RBD_ENCRYPTION_FORMAT_LUKS2, &o, sizeof(o));
  }
  if (r < 0) {
    return Err(-r, "cannot format image '{}' as {}: {}", Spec(image),
               format == LuksFormat::kLuks1 ? "LUKS1" : "LUKS2", Why(r));
  }
  return {};
}

Result<void> LibrbdSession::Flatten(const std::string& image) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  auto img = OpenImage(*io, image, OpenMode::kReadWrite, Spec(image));
  if (!img) return Unexpected(img.error());
  rbd_linked_image_spec_t parent{};
  rbd_snap_spec_t snap{};
  int r = rbd_get_parent(img->get(), &parent, &snap);
  if (r == -ENOENT) return {};  // nothing above it: flat already
  if (r == 0) {
    rbd_linked_image_spec_cleanup(&parent);
    rbd_snap_spec_cleanup(&snap);
  }
  if (r = rbd_flatten(img->get()); r < 0) return Err(-r, "cannot flatten image '{}': {}", Spec(image), Why(r));
  return {};
}

Result<RemoveOutcome> LibrbdSession::Remove(const std::string& image) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  std::string spec = Spec(image);
  bool has_snaps = false;
  {
    // Read-only: no watch of ours among the watchers we count.
    auto img = OpenImage(*io, image, OpenMode::kReadOnly, spec);
    if (!img && img.error().code == ENOENT) return RemoveOutcome::kNotFound;
    if (!img) return Unexpected(img.error());
    rbd_image_watcher_t watchers[16];
    size_t n = std::size(watchers);
    int r = rbd_watchers_list(img->get(), watchers, &n);
    if (r == -ERANGE) {
      // More than fit: n says how many; we only need the count.
      std::vector<rbd_image_watcher_t> all(n);
      r = rbd_watchers_list(img->get(), all.data(), &n);
      if (r == 0) rbd_watchers_list_cleanup(all.data(), n);
    } else if (r == 0) {
      rbd_watchers_list_cleanup(watchers, n);
    }
    if (r < 0) return Err(-r, "cannot list the watchers of image '{}': {}", spec, Why(r));
    if (n > 0) return Err(EBUSY, "image '{}' is in use: {} watcher{} (mapped somewhere)", spec, n, n == 1 ? "" : "s");
    // Every namespace: a snapshot in the trash namespace still backs a clone.
    auto snaps = ListSnapshots(img->get(), spec);
    if (!snaps) return Unexpected(snaps.error());
    has_snaps = !snaps->empty();
  }
  if (has_snaps) {
    int r = rbd_trash_move(*io, image.c_str(), 0);
    if (r == -ENOENT) return RemoveOutcome::kNotFound;
    if (r < 0) return Err(-r, "cannot move image '{}' (it has snapshots) to the trash: {}", spec, Why(r));
    return RemoveOutcome::kTrashed;
  }
  int r = rbd_remove(*io, image.c_str());
  if (r == -ENOENT) return RemoveOutcome::kNotFound;
  if (r == -EBUSY) return Err(EBUSY, "image '{}' is in use (a watcher came or it has clones)", spec);
  if (r == -ENOTEMPTY) {
    // A snapshot came since we looked: the trash then.
    if (r = rbd_trash_move(*io, image.c_str(), 0); r == 0) return RemoveOutcome::kTrashed;
  }
  if (r < 0) return Err(-r, "cannot remove image '{}': {}", spec, Why(r));
  return RemoveOutcome::kRemoved;
}

Result<RemoveOutcome> LibrbdSession::RemoveNew(const std::string& image) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  // rbd_remove refuses an image with watchers or clones (EBUSY) and one with
  // snapshots (ENOTEMPTY) by itself.
  int r = rbd_remove(*io, image.c_str());
  if (r == -ENOENT) return RemoveOutcome::kNotFound;
  if (r == -EBUSY) return Err(EBUSY, "image '{}' is in use (a watcher or a clone)", Spec(image));
  if (r == -ENOTEMPTY) return Err(ENOTEMPTY, "image '{}' has a snapshot", Spec(image));
  if (r < 0) return Err(-r, "cannot remove image '{}': {}", Spec(image), Why(r));
  return RemoveOutcome::kRemoved;
}

namespace {

struct TrashEntry {
  std::string id, name;
};

Result<std::vector<TrashEntry>> ListTrash(rados_ioctx_t io, const std::string& prefix, const std::string& where) {
  std::vector<rbd_trash_image_info_t> entries(32);
  for (;;) {
    size_t n = entries.size();
    int r = rbd_trash_list(io, entries.data(), &n);
    if (r == -ERANGE) {
      entries.resize(std::max(n, entries.size() * 2));
      continue;
    }
    if (r < 0) return Err(-r, "cannot list the trash of {}: {}", where, Why(r));
    std::vector<TrashEntry> out;
    for (size_t i = 0; i < n; ++i) {
      std::string name = entries[i].name;
      if (name.starts_with(prefix)) out.push_back({entries[i].id, std::move(name)});
    }
    rbd_trash_list_cleanup(entries.data(), n);
    return out;
  }
}

// Removes the trash-namespace snapshots of the trashed image `entry` that no
// clone uses any more; returns how many went. librbd removes such a snapshot
// when its last clone goes, but two clients can race it there: one removes
// the clone while the other moves the snapshot to the trash namespace (two
// create attempts on one source, each cleaning up after the other), and the
// snapshot is left with no clone, holding its image in the trash for good.
// A snapshot that a clone still uses refuses the removal (EBUSY) and stays.
int RemoveOrphanTrashSnapshots(rados_ioctx_t io, const TrashEntry& entry, const std::string& spec) {
  rbd_image_t h = nullptr;
  if (rbd_open_by_id(io, entry.id.c_str(), &h, nullptr) < 0) return 0;
  ImageHandle img(h);
  auto snaps = ListSnapshots(img.get(), spec);
  if (!snaps) return 0;
  int removed = 0;
  for (const auto& snap : *snaps) {
    rbd_snap_namespace_type_t type = RBD_SNAP_NAMESPACE_TYPE_USER;
    if (rbd_snap_get_namespace_type(img.get(), snap.id, &type) < 0 || type != RBD_SNAP_NAMESPACE_TYPE_TRASH) continue;
    int r = rbd_snap_remove_by_id(img.get(), snap.id);
    if (r == 0) {
      ++removed;
      spdlog::info("removed snapshot id {} of trashed image {}: in the trash namespace, and no clone uses it", snap.id,
                   spec);
    } else if (r != -EBUSY && r != -ENOENT) {
      spdlog::warn("cannot remove snapshot id {} of trashed image {}: {}", snap.id, spec, Why(r));
    }
  }
  return removed;
}

}  // namespace

Result<int> LibrbdSession::PurgeTrash(const std::string& name_prefix) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  int purged = 0;
  std::optional<Error> first_error;
  // A purged snapshot image can free its parent (clone v2 removes the parent's
  // trashed snapshot with its last child): go again while something went.
  for (bool went = true; went;) {
    went = false;
    auto entries = ListTrash(*io, name_prefix, PoolName());
    if (!entries) return Unexpected(entries.error());
    for (const auto& e : *entries) {
      int r = rbd_trash_remove(*io, e.id.c_str(), false);
      if (r == -ENOTEMPTY && RemoveOrphanTrashSnapshots(*io, e, Spec(e.name)) > 0) {
        r = rbd_trash_remove(*io, e.id.c_str(), false);
      }
      if (r == 0) {
        ++purged;
        went = true;
        spdlog::debug("purged trash entry '{}' (id {})", Spec(e.name), e.id);
        continue;
      }
      // Still holds snapshots (ENOTEMPTY), watched or a clone of it still
      // open (EBUSY), its deferment not over (EPERM), or gone meanwhile.
      if (r == -ENOTEMPTY || r == -EBUSY || r == -ENOENT || r == -EPERM || r == -EMLINK) continue;
      if (!first_error) {
        first_error = Error{-r, fmt::format("cannot purge trash entry '{}' (id {}): {}", Spec(e.name), e.id, Why(r))};
      }
    }
  }
  if (first_error) {
    if (purged == 0) return Unexpected(*first_error);
    spdlog::warn("{}", first_error->message);
  }
  return purged;
}

Result<int> LibrbdSession::CountTrash(const std::string& name_prefix) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  auto entries = ListTrash(*io, name_prefix, PoolName());
  if (!entries) return Unexpected(entries.error());
  return static_cast<int>(entries->size());
}

}  // namespace rbdnbd::csi
