#include "csi/controller/volume_id.h"

#include <sys/random.h>

#include <cerrno>
#include <vector>

namespace rbdnbd::csi {

namespace {

constexpr std::string_view kVolumePrefix = "rnv1";
constexpr std::string_view kSnapshotPrefix = "rns1";
constexpr char kHex[] = "0123456789abcdef";

bool Plain(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
}

std::string EncodeCluster(const ClusterRef& c) { return (c.by_id ? "c" : "m") + PercentEncode(c.value); }

std::string EncodeVolumeParts(const VolumeRef& ref) {
  return EncodeCluster(ref.cluster) + "." + PercentEncode(ref.pool) + "." + PercentEncode(ref.ns);
}

// parts: cluster, pool, namespace (already split, escapes still in).
Result<VolumeRef> DecodeVolumeParts(std::string_view cluster, std::string_view pool, std::string_view ns) {
  VolumeRef ref;
  if (cluster.empty() || (cluster[0] != 'c' && cluster[0] != 'm')) {
    return Err(EINVAL, "the cluster part must start with 'c' (clusterID) or 'm' (monitors)");
  }
  ref.cluster.by_id = cluster[0] == 'c';
  auto value = PercentDecode(cluster.substr(1));
  if (!value) return Unexpected(value.error());
  if (value->empty()) return Err(EINVAL, "the cluster part is empty");
  ref.cluster.value = std::move(value).value();
  auto p = PercentDecode(pool);
  if (!p) return Unexpected(p.error());
  if (p->empty()) return Err(EINVAL, "the pool part is empty");
  ref.pool = std::move(p).value();
  auto n = PercentDecode(ns);
  if (!n) return Unexpected(n.error());
  ref.ns = std::move(n).value();
  return ref;
}

}  // namespace

std::string PercentEncode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (Plain(c)) {
      out += c;
    } else {
      auto b = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return Err(EINVAL, "a truncated %-escape");
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi < 0 || lo < 0) return Err(EINVAL, "a bad %-escape");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (Plain(s[i])) {
      out += s[i];
    } else {
      return Err(EINVAL, "a character that must be %-escaped");
    }
  }
  return out;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 32) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NewUuid() {
  unsigned char bytes[16] = {};
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = ::getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string EncodeVolumeId(const VolumeRef& ref) {
  return std::string(kVolumePrefix) + "." + EncodeVolumeParts(ref) + "." + ref.uuid;
}

std::string EncodeSnapshotId(const SnapshotRef& ref) {
  return std::string(kSnapshotPrefix) + "." + EncodeVolumeParts(ref.source) + "." + ref.source.uuid + "." +
         ref.snap_uuid;
}

Result<VolumeRef> DecodeVolumeId(std::string_view id) {
  auto parts = Split(id);
  if (parts.size() != 5 || parts[0] != kVolumePrefix) {
    return Err(EINVAL, "'{}' is not a volume id of this driver ({}.<cluster>.<pool>.<namespace>.<uuid>)", id,
               kVolumePrefix);
  }
  auto ref = DecodeVolumeParts(parts[1], parts[2], parts[3]);
  if (!ref) return WithContext(ref.error(), fmt::format("volume id '{}'", id));
  if (!IsUuid(parts[4])) return Err(EINVAL, "volume id '{}': the last part is not a uuid", id);
  ref->uuid = std::string(parts[4]);
  return ref;
}

Result<SnapshotRef> DecodeSnapshotId(std::string_view id) {
  auto parts = Split(id);
  if (parts.size() != 6 || parts[0] != kSnapshotPrefix) {
    return Err(EINVAL,
               "'{}' is not a snapshot id of this driver ({}.<cluster>.<pool>.<namespace>.<source uuid>.<uuid>)", id,
               kSnapshotPrefix);
  }
  auto ref = DecodeVolumeParts(parts[1], parts[2], parts[3]);
  if (!ref) return WithContext(ref.error(), fmt::format("snapshot id '{}'", id));
  if (!IsUuid(parts[4]) || !IsUuid(parts[5])) return Err(EINVAL, "snapshot id '{}': a uuid part is malformed", id);
  SnapshotRef snap;
  snap.source = std::move(ref).value();
  snap.source.uuid = std::string(parts[4]);
  snap.snap_uuid = std::string(parts[5]);
  return snap;
}

}  // namespace rbdnbd::csi
