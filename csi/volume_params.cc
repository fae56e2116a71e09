#include "csi/volume_params.h"

#include <charconv>

#include "api/messages.h"
#include "common/size_parse.h"
#include "csi/csi_error.h"
#include "rbd/image_spec.h"

namespace rbdnbd::csi {

namespace {

std::string Get(const StringMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

Result<uint32_t> GetNumber(const StringMap& m, const std::string& key, uint32_t fallback, uint32_t lo, uint32_t hi) {
  auto it = m.find(key);
  if (it == m.end() || it->second.empty()) return fallback;
  const std::string& s = it->second;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) {
    return Err(kInvalidArgument, "volume_context '{}' must be a whole number in {}..{}, not '{}'", key, lo, hi, s);
  }
  return v;
}

Result<bool> GetBool(const StringMap& m, const std::string& key) {
  std::string s = Get(m, key);
  if (s.empty() || s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  return Err(kInvalidArgument, "volume_context '{}' must be \"true\" or \"false\", not '{}'", key, s);
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

}  // namespace

Result<VolumeParams> ParseVolumeParams(const std::string& volume_id, const StringMap& context,
                                       const StringMap& secrets, const ClusterConfig& clusters) {
  VolumeParams p;
  // Secrets first: their absence is the most common misconfiguration.
  std::string user = Get(secrets, "userID");
  if (user.empty()) return Err(kInvalidArgument, "node stage secret 'userID' is required");
  if (user.find_first_of(" \t\n/") != std::string::npos || user.rfind("client.", 0) == 0) {
    return Err(kInvalidArgument, "node stage secret 'userID' must be a bare cephx id (e.g. kube, without 'client.')");
  }
  p.client_name = "client." + user;
  if (Get(secrets, "userKey").empty()) return Err(kInvalidArgument, "node stage secret 'userKey' is required");
  p.key = Secret(secrets.at("userKey"));

  std::string pool = Get(context, "pool");
  if (pool.empty()) return Err(kInvalidArgument, "volume_context 'pool' is required");
  auto is_static = GetBool(context, "staticVolume");
  if (!is_static) return Unexpected(is_static.error());
  std::string image = Get(context, "imageName");
  if (image.empty()) {
    if (!*is_static) return Err(kInvalidArgument, "volume_context 'imageName' is required (or set staticVolume: \"true\")");
    image = volume_id;
  }

  std::string ns = Get(context, "radosNamespace");
  if (ns.empty()) ns = Get(context, "namespace");
  std::string monitors = Get(context, "monitors");
  std::string cluster_id = Get(context, "clusterID");
  if (!cluster_id.empty()) {
    const ClusterEntry* c = FindCluster(clusters, cluster_id);
    if (c == nullptr && monitors.empty()) {
      return Err(kInvalidArgument, "volume_context 'clusterID' '{}' is not in the cluster config", cluster_id);
    }
    if (c != nullptr) {
      if (monitors.empty()) monitors = Join(c->monitors);
      if (ns.empty()) ns = c->rados_namespace;
    }
  }
  if (monitors.empty()) return Err(kInvalidArgument, "volume_context 'clusterID' or 'monitors' is required");
  if (monitors.find_first_of(" \t\n") != std::string::npos) {
    return Err(kInvalidArgument, "volume_context 'monitors' must be comma-separated addresses without spaces");
  }
  p.mon_host = monitors;

  for (const auto& [key, value] : {std::pair{"pool", pool}, std::pair{"radosNamespace", ns}, std::pair{"imageName", image}}) {
    if (value.find_first_of("/@") != std::string::npos) {
      return Err(kInvalidArgument, "volume_context '{}' must not contain '/' or '@'", key);
    }
  }
  std::string text = ns.empty() ? pool + "/" + image : pool + "/" + ns + "/" + image;
  auto spec = ParseImageSpec(text);
  if (!spec) return Err(kInvalidArgument, "volume_context pool/radosNamespace/imageName: {}", spec.error().message);
  if (spec->is_snapshot() || spec->ToString() != text) {
    return Err(kInvalidArgument, "volume_context pool/radosNamespace/imageName must not contain '/' or '@'");
  }
  p.spec = spec->ToString();

  auto connections = GetNumber(context, "connections", 1, 1, 16);
  if (!connections) return Unexpected(connections.error());
  p.connections = *connections;
  auto io_timeout = GetNumber(context, "ioTimeout", 30, 0, 86400);
  if (!io_timeout) return Unexpected(io_timeout.error());
  p.io_timeout_s = *io_timeout;
  auto connect_timeout = GetNumber(context, "connectTimeout", 30, 1, 3600);
  if (!connect_timeout) return Unexpected(connect_timeout.error());
  p.connect_timeout_s = *connect_timeout;
  auto reattach = GetNumber(context, "reattachTimeout", 60, 0, 86400);
  if (!reattach) return Unexpected(reattach.error());
  p.reattach_timeout_s = *reattach;
  auto exclusive = GetBool(context, "exclusive");
  if (!exclusive) return Unexpected(exclusive.error());
  p.exclusive = *exclusive;

  p.encryption = Get(context, "encryption");
  if (!p.encryption.empty()) {
    if (p.encryption != "luks1" && p.encryption != "luks2") {
      return Err(kInvalidArgument, "volume_context 'encryption' must be luks1 or luks2, not '{}'", p.encryption);
    }
    if (Get(secrets, "encryptionPassphrase").empty()) {
      return Err(kInvalidArgument, "node stage secret 'encryptionPassphrase' is required with encryption");
    }
    p.passphrase = Secret(secrets.at("encryptionPassphrase"));
  }

  auto device_type = ParseDeviceType(Get(context, kDeviceTypeKey));
  if (!device_type) return Unexpected(device_type.error());
  p.device_type = *device_type;
  // The daemon's limits (api/messages.h): UBLK_MAX_QUEUE_DEPTH, and whole
  // pages up to the driver's 32 MiB request buffer.
  auto depth = GetNumber(context, "ublkQueueDepth", 0, 1, api::kMaxUblkQueueDepth);
  if (!depth) return Unexpected(depth.error());
  p.ublk_queue_depth = *depth;
  if (std::string max_io = Get(context, "ublkMaxIoSize"); !max_io.empty()) {
    auto bytes = ParseSize(max_io);
    if (!bytes || !api::IsUblkMaxIoBytes(*bytes)) {
      return Err(kInvalidArgument, "volume_context 'ublkMaxIoSize' must be a multiple of 4K from 4K to 32M, not '{}'",
                 max_io);
    }
    p.ublk_max_io_bytes = static_cast<uint32_t>(*bytes);
  }
  if (p.device_type == DeviceType::kNbd && (p.ublk_queue_depth != 0 || p.ublk_max_io_bytes != 0)) {
    return Err(kInvalidArgument, "volume_context '{}' applies to deviceType ublk or auto, not nbd",
               p.ublk_queue_depth != 0 ? "ublkQueueDepth" : "ublkMaxIoSize");
  }

  std::string mkfs = Get(context, "mkfsOptions");
  if (mkfs.size() > 1024) return Err(kInvalidArgument, "volume_context 'mkfsOptions' is longer than 1024 bytes");
  for (size_t i = 0; i < mkfs.size();) {
    size_t start = mkfs.find_first_not_of(" \t", i);
    if (start == std::string::npos) break;
    size_t end = mkfs.find_first_of(" \t", start);
    if (end == std::string::npos) end = mkfs.size();
    std::string word = mkfs.substr(start, end - start);
    if (word.front() == '/') {
      return Err(kInvalidArgument, "volume_context 'mkfsOptions' must not name a path ('{}'): the device is added by the plugin", word);
    }
    p.mkfs_options.push_back(std::move(word));
    i = end;
  }
  return p;
}

}  // namespace rbdnbd::csi
