#include "csi/controller/credentials.h"

#include "csi/csi_error.h"

namespace rbdnbd::csi {

bool HasUser(const StringMap& secrets) {
  auto it = secrets.find("userID");
  return it != secrets.end() && !it->second.empty();
}

Result<CephUser> UserFromSecrets(const StringMap& secrets, std::string_view secret) {
  auto id = secrets.find("userID");
  if (id == secrets.end() || id->second.empty()) {
    return Err(kInvalidArgument, "the {} secret's 'userID' is required", secret);
  }
  if (id->second.find_first_of(" \t\n/") != std::string::npos || id->second.rfind("client.", 0) == 0) {
    return Err(kInvalidArgument, "the {} secret's 'userID' must be a bare cephx id (e.g. kube, without 'client.')",
               secret);
  }
  auto key = secrets.find("userKey");
  if (key == secrets.end() || key->second.empty()) {
    return Err(kInvalidArgument, "the {} secret's 'userKey' is required", secret);
  }
  CephUser user;
  user.client_name = "client." + id->second;
  user.key = Secret(key->second);
  return user;
}

void CredentialCache::Remember(const ClusterRef& cluster, const CephUser& user) {
  std::lock_guard lock(mu_);
  users_[cluster.Key()] = user;
}

void CredentialCache::RememberPool(const PoolRef& pool) {
  std::lock_guard lock(mu_);
  pools_.insert(pool);
}

std::optional<CephUser> CredentialCache::Get(const ClusterRef& cluster) const {
  std::lock_guard lock(mu_);
  auto it = users_.find(cluster.Key());
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::vector<PoolRef> CredentialCache::Pools() const {
  std::lock_guard lock(mu_);
  return {pools_.begin(), pools_.end()};
}

}  // namespace rbdnbd::csi
