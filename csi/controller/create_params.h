// CreateParams: a CreateVolume's StorageClass parameters as what to create
// (README.md, "StorageClass parameters"), the capacity rule, the volume's
// fingerprint and the volume_context handed to the node plugin.
//
// Contract: pure (the cluster list is passed in), any thread. Every problem
// is kInvalidArgument (csi_error.h) naming the key, or kOutOfRange for a
// capacity that cannot be met; never a secret's value in a message.
//
// Capacity rule (ResolveCapacity): negative bytes are INVALID_ARGUMENT. The
// size wanted is required_bytes, else the content source's size, else 1 GiB,
// never above a given limit_bytes; it is rounded up to a multiple of 1 MiB
// (librbd takes any size, but the kernel and filesystems like whole MiB).
// A required_bytes above limit_bytes, a rounded size above limit_bytes, above
// kMaxVolumeBytes, or below the content source's size is OUT_OF_RANGE (a
// range that cannot be met, as the README's error table says).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/result.h"
#include "csi/cluster_config.h"
#include "csi/controller/ceph_store.h"
#include "csi/controller/controller_error.h"
#include "csi/controller/volume_id.h"
#include "csi/volume_params.h"

namespace rbdnbd::csi {

inline constexpr uint64_t kMiB = 1ULL << 20;
inline constexpr uint64_t kDefaultVolumeBytes = 1ULL << 30;  // 1 GiB when the CO asks for no size
// 1 PiB: far above any real PV, and well inside librbd's and int64's range,
// so sizes and their rounding can never overflow.
inline constexpr uint64_t kMaxVolumeBytes = 1ULL << 50;

// What the external-provisioner adds to every CreateVolume (allowed, never
// part of the volume's identity).
inline constexpr std::string_view kK8sParamPrefix = "csi.storage.k8s.io/";

struct CreateParams {
  ClusterRef cluster;
  std::string mon_host;  // comma-separated: from the cluster config or `monitors`
  std::string pool;
  std::string ns;
  std::string data_pool;
  uint64_t features = 0;
  uint64_t object_size = 0;  // 0: Ceph's default
  bool encrypted = false;
  LuksFormat luks = LuksFormat::kLuks2;
  StringMap node_keys;  // fsType, mkfsOptions, ...: passed through to the volume_context
  StringMap metadata;   // csi.pvc.name, csi.pvc.namespace, csi.pv.name

  std::string EncryptionName() const { return luks == LuksFormat::kLuks1 ? "luks1" : "luks2"; }
};

// The default: every feature the node daemon handles that krbd also maps,
// i.e. all but journaling (as `rbd create` in Ceph 16).
uint64_t DefaultFeatures();
// "layering,exclusive-lock": the RBD_FEATURE_* bits; an unknown name, or a
// feature without the one it needs, is kInvalidArgument naming it.
Result<uint64_t> ParseFeatures(std::string_view text);
std::string FeatureNames(uint64_t features);

Result<CreateParams> ParseCreateParams(const StringMap& parameters, const ClusterConfig& clusters);

// The monitors of a cluster named by an id (its clusterID looked up, or the
// monitors themselves); an unknown clusterID is kInvalidArgument.
Result<std::string> ResolveMonitors(const ClusterRef& cluster, const ClusterConfig& clusters);

Result<uint64_t> ResolveCapacity(int64_t required_bytes, int64_t limit_bytes, uint64_t source_bytes);

// A short hash of everything that defines the volume apart from its size:
// where it lives, its features, layout, encryption, node keys and content
// source (`source`: "", "snapshot:<id>" or "volume:<id>").
std::string Fingerprint(const CreateParams& params, const std::string& source);

// The volume_context the node plugin reads (csi/volume_params.cc).
StringMap VolumeContext(const CreateParams& params, const std::string& image);

}  // namespace rbdnbd::csi
