#include "csi/controller/create_params.h"

#include <rbd/features.h>

#include <array>
#include <set>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "common/size_parse.h"
#include "csi/csi_error.h"

namespace rbdnbd::csi {

namespace {

struct FeatureName {
  std::string_view name;
  uint64_t bit;
  uint64_t needs;  // another bit it depends on (0: none)
  std::string_view needs_name;
};

constexpr std::array<FeatureName, 6> kFeatures = {{
    {"layering", RBD_FEATURE_LAYERING, 0, ""},
    {"exclusive-lock", RBD_FEATURE_EXCLUSIVE_LOCK, 0, ""},
    {"object-map", RBD_FEATURE_OBJECT_MAP, RBD_FEATURE_EXCLUSIVE_LOCK, "exclusive-lock"},
    {"fast-diff", RBD_FEATURE_FAST_DIFF, RBD_FEATURE_OBJECT_MAP, "object-map"},
    {"deep-flatten", RBD_FEATURE_DEEP_FLATTEN, 0, ""},
    {"journaling", RBD_FEATURE_JOURNALING, RBD_FEATURE_EXCLUSIVE_LOCK, "exclusive-lock"},
}};

// The node keys: the node plugin reads them from the volume_context.
const std::set<std::string, std::less<>> kNodeKeys = {
    "fsType",    "mkfsOptions", "connections",    "ioTimeout",     "connectTimeout", "reattachTimeout",
    "exclusive", "deviceType",  "ublkQueueDepth", "ublkMaxIoSize"};

const std::set<std::string, std::less<>> kOwnKeys = {"clusterID", "monitors", "pool", "dataPool", "radosNamespace",
                                                     "imageFeatures", "objectSize", "encrypted", "encryptionFormat"};

std::string Get(const StringMap& m, std::string_view key) {
  auto it = m.find(std::string(key));
  return it == m.end() ? std::string() : it->second;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

Result<void> CheckName(std::string_view key, const std::string& value) {
  if (value.find_first_of("/@ \t\n") != std::string::npos) {
    return Err(kInvalidArgument, "parameter '{}' must not contain '/', '@' or blanks", key);
  }
  return {};
}

}  // namespace

uint64_t DefaultFeatures() {
  return RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |
         RBD_FEATURE_DEEP_FLATTEN;
}

Result<uint64_t> ParseFeatures(std::string_view text) {
  uint64_t bits = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view word = Trim(text.substr(start, comma - start));
    start = comma + 1;
    if (word.empty()) continue;
    const FeatureName* found = nullptr;
    for (const auto& f : kFeatures) {
      if (f.name == word) found = &f;
    }
    if (found == nullptr) {
      return Err(kInvalidArgument,
                 "parameter 'imageFeatures': unknown feature '{}' (known: layering, exclusive-lock, object-map, "
                 "fast-diff, deep-flatten, journaling)",
                 word);
    }
    bits |= found->bit;
  }
  for (const auto& f : kFeatures) {
    if ((bits & f.bit) != 0 && f.needs != 0 && (bits & f.needs) == 0) {
      return Err(kInvalidArgument, "parameter 'imageFeatures': {} needs {}", f.name, f.needs_name);
    }
  }
  return bits;
}

std::string FeatureNames(uint64_t features) {
  std::vector<std::string> names;
  for (const auto& f : kFeatures) {
    if ((features & f.bit) != 0) names.emplace_back(f.name);
  }
  return Join(names);
}

Result<std::string> ResolveMonitors(const ClusterRef& cluster, const ClusterConfig& clusters) {
  if (!cluster.by_id) return cluster.value;
  const ClusterEntry* entry = FindCluster(clusters, cluster.value);
  if (entry == nullptr) {
    return Err(kInvalidArgument, "clusterID '{}' is not in the cluster config", cluster.value);
  }
  if (entry->monitors.empty()) return Err(kInvalidArgument, "clusterID '{}' has no monitors", cluster.value);
  return Join(entry->monitors);
}

Result<CreateParams> ParseCreateParams(const StringMap& parameters, const ClusterConfig& clusters) {
  for (const auto& [key, value] : parameters) {
    if (key.rfind(kK8sParamPrefix, 0) == 0 || kOwnKeys.count(key) != 0 || kNodeKeys.count(key) != 0) continue;
    return Err(kInvalidArgument, "unknown parameter '{}'", key);
  }
  CreateParams p;
  std::string cluster_id = Get(parameters, "clusterID");
  std::string monitors = Get(parameters, "monitors");
  if (!cluster_id.empty() && !monitors.empty()) {
    return Err(kInvalidArgument, "parameters 'clusterID' and 'monitors': give one, not both");
  }
  if (!cluster_id.empty()) {
    p.cluster = ClusterRef{true, cluster_id};
    const ClusterEntry* entry = FindCluster(clusters, cluster_id);
    if (entry == nullptr) {
      return Err(kInvalidArgument, "parameter 'clusterID': '{}' is not in the cluster config", cluster_id);
    }
    p.ns = entry->rados_namespace;
  } else if (!monitors.empty()) {
    if (monitors.find_first_of(" \t\n") != std::string::npos) {
      return Err(kInvalidArgument, "parameter 'monitors' must be comma-separated addresses without blanks");
    }
    p.cluster = ClusterRef{false, monitors};
  } else {
    return Err(kInvalidArgument, "parameter 'clusterID' (or 'monitors') is required");
  }
  auto mons = ResolveMonitors(p.cluster, clusters);
  if (!mons) return Unexpected(mons.error());
  p.mon_host = std::move(mons).value();

  p.pool = Get(parameters, "pool");
  if (p.pool.empty()) return Err(kInvalidArgument, "parameter 'pool' is required");
  if (auto r = CheckName("pool", p.pool); !r) return Unexpected(r.error());
  if (parameters.count("radosNamespace") != 0) p.ns = Get(parameters, "radosNamespace");
  if (auto r = CheckName("radosNamespace", p.ns); !r) return Unexpected(r.error());
  p.data_pool = Get(parameters, "dataPool");
  if (auto r = CheckName("dataPool", p.data_pool); !r) return Unexpected(r.error());

  std::string features = Get(parameters, "imageFeatures");
  if (features.empty()) {
    p.features = DefaultFeatures();
  } else {
    auto bits = ParseFeatures(features);
    if (!bits) return Unexpected(bits.error());
    p.features = *bits;
  }
  std::string object_size = Get(parameters, "objectSize");
  if (!object_size.empty()) {
    auto size = ParseSize(object_size);
    if (!size || *size < 4096 || *size > 32 * kMiB || (*size & (*size - 1)) != 0) {
      return Err(kInvalidArgument, "parameter 'objectSize' must be a power of two from 4Ki to 32Mi, not '{}'",
                 object_size);
    }
    p.object_size = *size;
  }

  std::string encrypted = Get(parameters, "encrypted");
  if (encrypted == "true" || encrypted == "True") {
    p.encrypted = true;
  } else if (!encrypted.empty() && encrypted != "false" && encrypted != "False") {
    return Err(kInvalidArgument, "parameter 'encrypted' must be \"true\" or \"false\", not '{}'", encrypted);
  }
  std::string format = Get(parameters, "encryptionFormat");
  if (!format.empty()) {
    if (!p.encrypted) return Err(kInvalidArgument, "parameter 'encryptionFormat' needs encrypted: \"true\"");
    if (format == "luks1") {
      p.luks = LuksFormat::kLuks1;
    } else if (format != "luks2") {
      return Err(kInvalidArgument, "parameter 'encryptionFormat' must be luks1 or luks2, not '{}'", format);
    }
  }

  for (const auto& [key, value] : parameters) {
    if (kNodeKeys.count(key) != 0 && !value.empty()) p.node_keys[key] = value;
  }
  // The node plugin's own parser checks the node keys now, not at the first
  // stage: a StorageClass with a bad ioTimeout fails to provision. The
  // credentials here are placeholders that parser insists on; they go nowhere.
  StringMap placeholder_secrets = {{"userID", "check"}, {"userKey", "check"}, {"encryptionPassphrase", "check"}};
  auto node = ParseVolumeParams("check", VolumeContext(p, "check"), placeholder_secrets, clusters);
  if (!node) return Err(kInvalidArgument, "StorageClass parameters: {}", node.error().message);

  std::string pvc = Get(parameters, "csi.storage.k8s.io/pvc/name");
  std::string pvc_ns = Get(parameters, "csi.storage.k8s.io/pvc/namespace");
  std::string pv = Get(parameters, "csi.storage.k8s.io/pv/name");
  if (!pvc.empty()) p.metadata["csi.pvc.name"] = pvc;
  if (!pvc_ns.empty()) p.metadata["csi.pvc.namespace"] = pvc_ns;
  if (!pv.empty()) p.metadata["csi.pv.name"] = pv;
  return p;
}

Result<uint64_t> ResolveCapacity(int64_t required_bytes, int64_t limit_bytes, uint64_t source_bytes) {
  if (required_bytes < 0) return Err(kInvalidArgument, "capacity_range.required_bytes must not be negative");
  if (limit_bytes < 0) return Err(kInvalidArgument, "capacity_range.limit_bytes must not be negative");
  if (limit_bytes > 0 && required_bytes > limit_bytes) {
    return Err(kOutOfRange, "capacity_range.required_bytes {} is above limit_bytes {}: no size meets both",
               required_bytes, limit_bytes);
  }
  uint64_t want = required_bytes > 0 ? static_cast<uint64_t>(required_bytes)
                                     : (source_bytes > 0 ? source_bytes : kDefaultVolumeBytes);
  if (required_bytes == 0 && source_bytes == 0 && limit_bytes > 0) {
    want = std::min<uint64_t>(want, static_cast<uint64_t>(limit_bytes));
  }
  if (want > kMaxVolumeBytes) {
    return Err(kOutOfRange, "{} bytes is above this driver's maximum volume size {} (1 PiB)", want, kMaxVolumeBytes);
  }
  uint64_t rounded = (want + kMiB - 1) / kMiB * kMiB;
  if (limit_bytes > 0 && rounded > static_cast<uint64_t>(limit_bytes)) {
    return Err(kOutOfRange, "capacity_range.limit_bytes {} is below {} bytes (the size rounded up to whole MiB)",
               limit_bytes, rounded);
  }
  if (rounded < source_bytes) {
    return Err(kOutOfRange, "{} bytes is smaller than the content source ({} bytes)", rounded, source_bytes);
  }
  return rounded;
}

std::string Fingerprint(const CreateParams& p, const std::string& source) {
  nlohmann::json j = {{"cluster", p.cluster.Key()}, {"pool", p.pool},         {"ns", p.ns},
                      {"data_pool", p.data_pool},   {"features", p.features}, {"object_size", p.object_size},
                      {"encryption", p.encrypted ? p.EncryptionName() : ""},  {"node", p.node_keys},
                      {"source", source}};
  std::string text = j.dump();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len && i < 16; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

StringMap VolumeContext(const CreateParams& p, const std::string& image) {
  StringMap ctx = p.node_keys;
  if (p.cluster.by_id) {
    ctx["clusterID"] = p.cluster.value;
  } else {
    ctx["monitors"] = p.cluster.value;
  }
  ctx["pool"] = p.pool;
  if (!p.ns.empty()) ctx["radosNamespace"] = p.ns;
  ctx["imageName"] = image;
  if (p.encrypted) ctx["encryption"] = p.EncryptionName();
  return ctx;
}

}  // namespace rbdnbd::csi
