// Small RAII wrappers around librbd's and librados' C handles, for the
// LibrbdSession methods. Internal to rbdnbd_csi_ceph.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace rbdnbd::csi {

inline std::string Why(int r) { return fmt::format("{} ({})", strerror(r < 0 ? -r : r), r < 0 ? -r : r); }

// librbd's C API calls a progress callback without checking it for null
// (rbd_snap_create2 does, while it notifies quiesce): pass this one.
inline int NoProgress(uint64_t, uint64_t, void*) { return 0; }

// An open image; closed when it goes.
class ImageHandle {
 public:
  ImageHandle() = default;
  explicit ImageHandle(rbd_image_t h) : h_(h) {}
  ImageHandle(ImageHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  ImageHandle& operator=(ImageHandle&& o) noexcept {
    if (this != &o) { Close(); h_ = std::exchange(o.h_, nullptr); }
    return *this;
  }
  ~ImageHandle() { Close(); }
  rbd_image_t get() const { return h_; }
  void Close() {
    if (h_ != nullptr) rbd_close(std::exchange(h_, nullptr));
  }

 private:
  rbd_image_t h_ = nullptr;
};

enum class OpenMode {
  kReadOnly,   // no header watch: the image's watchers do not see us
  kReadWrite,  // a header watch, as any writer (snapshots, resize, metadata)
};

// Opens `name` in `io`; `spec` names it in messages. ENOENT: no such image.
inline Result<ImageHandle> OpenImage(rados_ioctx_t io, const std::string& name, OpenMode mode,
                                     const std::string& spec) {
  rbd_image_t h = nullptr;
  int r = mode == OpenMode::kReadOnly ? rbd_open_read_only(io, name.c_str(), &h, nullptr)
                                      : rbd_open(io, name.c_str(), &h, nullptr);
  if (r == -ENOENT) return Err(ENOENT, "image '{}' does not exist", spec);
  if (r < 0) return Err(-r, "cannot open image '{}': {}", spec, Why(r));
  return ImageHandle(h);
}

struct SnapEntry {
  uint64_t id = 0;
  uint64_t size = 0;
  std::string name;
};

// Every snapshot of an open image, of every namespace (user, trash, ...).
inline Result<std::vector<SnapEntry>> ListSnapshots(rbd_image_t img, const std::string& spec) {
  std::vector<rbd_snap_info_t> snaps(16);
  for (;;) {
    int max = static_cast<int>(snaps.size());
    int r = rbd_snap_list(img, snaps.data(), &max);
    if (r == -ERANGE) {
      snaps.resize(std::max<size_t>(max, snaps.size() * 2));
      continue;
    }
    if (r < 0) return Err(-r, "cannot list the snapshots of image '{}': {}", spec, Why(r));
    std::vector<SnapEntry> out;
    for (int i = 0; i < r; ++i) out.push_back({snaps[i].id, snaps[i].size, snaps[i].name});
    rbd_snap_list_end(snaps.data());
    return out;
  }
}

// rbd_image_options_t, destroyed when it goes.
class ImageOptions {
 public:
  ImageOptions() { rbd_image_options_create(&o_); }
  ~ImageOptions() { rbd_image_options_destroy(o_); }
  ImageOptions(const ImageOptions&) = delete;
  ImageOptions& operator=(const ImageOptions&) = delete;
  rbd_image_options_t get() const { return o_; }
  Result<void> Set(int option, uint64_t value) {
    if (int r = rbd_image_options_set_uint64(o_, option, value); r < 0) {
      return Err(-r, "invalid image option {}={}: {}", option, value, Why(r));
    }
    return {};
  }
  Result<void> Set(int option, const std::string& value) {
    if (int r = rbd_image_options_set_string(o_, option, value.c_str()); r < 0) {
      return Err(-r, "invalid image option {}='{}': {}", option, value, Why(r));
    }
    return {};
  }

 private:
  rbd_image_options_t o_ = nullptr;
};

class WriteOp {
 public:
  WriteOp() : op_(rados_create_write_op()) {}
  ~WriteOp() { rados_release_write_op(op_); }
  WriteOp(const WriteOp&) = delete;
  WriteOp& operator=(const WriteOp&) = delete;
  rados_write_op_t get() const { return op_; }

 private:
  rados_write_op_t op_;
};

class ReadOp {
 public:
  ReadOp() : op_(rados_create_read_op()) {}
  ~ReadOp() { rados_release_read_op(op_); }
  ReadOp(const ReadOp&) = delete;
  ReadOp& operator=(const ReadOp&) = delete;
  rados_read_op_t get() const { return op_; }

 private:
  rados_read_op_t op_;
};

// An omap iterator, ended when it goes.
class OmapIter {
 public:
  OmapIter() = default;
  ~OmapIter() {
    if (it_ != nullptr) rados_omap_get_end(it_);
  }
  OmapIter(const OmapIter&) = delete;
  OmapIter& operator=(const OmapIter&) = delete;
  rados_omap_iter_t* out() { return &it_; }
  // The next pair; false at the end (or on an error, with *r set).
  bool Next(std::string* key, std::string* value, int* r) {
    char* k = nullptr;
    char* v = nullptr;
    size_t klen = 0, vlen = 0;
    *r = it_ == nullptr ? 0 : rados_omap_get_next2(it_, &k, &v, &klen, &vlen);
    if (*r < 0 || k == nullptr) return false;
    key->assign(k, klen);
    value->assign(v == nullptr ? "" : std::string(v, vlen));
    return true;
  }

 private:
  rados_omap_iter_t it_ = nullptr;
};

}  // namespace rbdnbd::csi
