// Credentials: the cephx user of a call, from its secrets, and what the
// controller remembers between calls (README.md, "Secrets").
//
// Contract
// * UserFromSecrets() is pure: `userID` (a bare id, without "client.") and
//   `userKey` from the secret the RPC takes; a missing or malformed one is
//   kInvalidArgument naming "the <secret> secret's 'userID'". The key is held
//   in a Secret and never appears in a message.
// * CredentialCache remembers, in memory only, the user of the last call that
//   succeeded on each cluster, and every (cluster, pool, namespace) a call
//   succeeded on since start. ListVolumes and GetCapacity carry no secrets in
//   CSI: they use these. Thread-safe (gRPC threads, concurrently).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/result.h"
#include "csi/controller/ceph_store.h"
#include "csi/controller/volume_id.h"
#include "csi/volume_params.h"

namespace rbdnbd::csi {

Result<CephUser> UserFromSecrets(const StringMap& secrets, std::string_view secret);
// True when the secrets carry a userID (an RPC whose secrets are optional).
bool HasUser(const StringMap& secrets);

struct PoolRef {
  ClusterRef cluster;
  std::string pool;
  std::string ns;
  auto operator<=>(const PoolRef&) const = default;
};

class CredentialCache {
 public:
  void Remember(const ClusterRef& cluster, const CephUser& user);
  void RememberPool(const PoolRef& pool);
  std::optional<CephUser> Get(const ClusterRef& cluster) const;
  std::vector<PoolRef> Pools() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, CephUser> users_;  // by ClusterRef::Key()
  std::set<PoolRef> pools_;
};

}  // namespace rbdnbd::csi
