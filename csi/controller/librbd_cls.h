// Direct cls_rbd calls on an image's RADOS objects, for the few things the
// controller would otherwise open an image for. In Pacific every ImageCtx
// copies the whole config schema (~2,000 options): an rbd_open read-write,
// the exclusive lock rbd_metadata_set takes, and the close cost a create
// two thirds of its time and most of its CPU (bench/RESULTS.md, issue 6).
//
// Only for a brand-new image that nobody has open (the caller just made it):
// these calls take no exclusive lock, send no header-update notification
// (librbd's open handles would not refresh) and append no journal event (so
// the caller keeps librbd's path for images with journaling: a journal-mode
// mirror peer replays metadata from the journal).
//
// Encodings are Ceph's (src/include/encoding.h, checked against cls_rbd.cc
// and cls_rbd_client.cc of Pacific): integers little-endian; a std::string
// and a bufferlist are a u32 length then the bytes; a std::map is a u32 count
// then each key and value. librbd's MetadataSetRequest puts the value's bytes
// in the bufferlist as they are; cls metadata_set stores each pair under the
// omap key "metadata_<key>" of rbd_header.<id>.
//
// Threads: any; each call blocks on one OSD round trip.
#pragma once

#include <rados/librados.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "csi/controller/librbd_util.h"

namespace rbdnbd::csi::cls {

inline void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

inline void PutBytes(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// The input of cls rbd.metadata_set: map<string, bufferlist>.
inline std::string EncodeMetadata(const std::map<std::string, std::string>& metadata) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(metadata.size()));
  for (const auto& [k, v] : metadata) {
    PutBytes(&out, k);
    PutBytes(&out, v);
  }
  return out;
}

inline std::optional<uint64_t> GetLe(std::string_view in, size_t* pos, int bytes) {
  if (*pos > in.size() || in.size() - *pos < static_cast<size_t>(bytes)) return std::nullopt;
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(in[*pos + i])} << (8 * i);
  *pos += bytes;
  return v;
}

// An encoded std::string that is the whole of `in`.
inline std::optional<std::string> DecodeString(std::string_view in) {
  size_t pos = 0;
  auto len = GetLe(in, &pos, 4);
  if (!len || in.size() - pos != *len) return std::nullopt;
  return std::string(in.substr(pos));
}

// The image id of `name` (cls rbd.get_id on rbd_id.<name>).
inline Result<std::string> ImageId(rados_ioctx_t io, const std::string& name, const std::string& spec) {
  std::string oid = "rbd_id." + name;
  char out[512];
  int r = rados_exec(io, oid.c_str(), "rbd", "get_id", "", 0, out, sizeof(out));
  if (r == -ENOENT) return Err(ENOENT, "image '{}' does not exist", spec);
  if (r < 0) return Err(-r, "cannot read the id of image '{}': {}", spec, Why(r));
  auto id = DecodeString(std::string_view(out, static_cast<size_t>(r)));
  if (!id || id->empty()) return Err(EIO, "image '{}': {} holds no image id", spec, oid);
  return *id;
}

// The size of the image's head (cls rbd.get_size(CEPH_NOSNAP) on its header:
// out u8 order, u64 size).
inline Result<uint64_t> HeadSize(rados_ioctx_t io, const std::string& id, const std::string& spec) {
  std::string oid = "rbd_header." + id;
  std::string in;
  PutU64(&in, LIBRADOS_SNAP_HEAD);
  char out[64];
  int r = rados_exec(io, oid.c_str(), "rbd", "get_size", in.data(), in.size(), out, sizeof(out));
  if (r < 0) return Err(-r, "cannot read the size of image '{}': {}", spec, Why(r));
  std::string_view got(out, static_cast<size_t>(r));
  size_t pos = 1;  // the order
  auto size = got.empty() ? std::nullopt : GetLe(got, &pos, 8);
  if (!size || pos != got.size()) return Err(EIO, "image '{}': undecodable get_size answer ({} bytes)", spec, r);
  return *size;
}

// Writes `metadata` to the header of image `id` in one cls rbd.metadata_set,
// guarded so that a missing header fails (ENOENT) instead of being created.
inline Result<void> SetMetadata(rados_ioctx_t io, const std::string& id,
                                const std::map<std::string, std::string>& metadata, const std::string& spec) {
  std::string oid = "rbd_header." + id;
  std::string in = EncodeMetadata(metadata);
  WriteOp op;
  rados_write_op_assert_exists(op.get());
  int prval = 0;
  rados_write_op_exec(op.get(), "rbd", "metadata_set", in.data(), in.size(), &prval);
  int r = rados_write_op_operate(op.get(), io, oid.c_str(), nullptr, 0);
  if (r == 0) r = prval;
  if (r < 0) return Err(-r, "cannot set the metadata of image '{}' ({}): {}", spec, oid, Why(r));
  return {};
}

}  // namespace rbdnbd::csi::cls
