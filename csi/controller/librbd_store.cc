// The store: the connection cache and Open(); and what a session needs from
// the cluster as a whole (its ioctx, the df answer).
#include "csi/controller/librbd_store.h"

#include <map>
#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "csi/controller/librbd_session.h"
#include "csi/controller/librbd_util.h"
#include "rbd/cluster.h"

namespace rbdnbd::csi {
namespace {

// Connections by ClusterOptions::PoolKey(), each kept while a session uses it
// and for idle_keep after the last one ended. Shared with the sessions' leases,
// so a session may outlive the store.
class ConnectionCache : public std::enable_shared_from_this<ConnectionCache> {
 public:
  explicit ConnectionCache(std::chrono::seconds idle_keep) : idle_keep_(idle_keep) {}

  // Drops the connections idle for longer than idle_keep (the pool closes one
  // when its last user, possibly a session still running, lets it go).
  void Sweep() {
    std::vector<std::shared_ptr<RadosCluster>> dropped;  // closed outside mu_: a shutdown takes time
    {
      std::lock_guard lock(mu_);
      auto now = std::chrono::steady_clock::now();
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.sessions == 0 && now - it->second.last_used >= idle_keep_) {
          dropped.push_back(std::move(it->second.cluster));
          it = entries_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& c : dropped) spdlog::debug("closing the idle connection as {}", c->client_name());
  }

  // The cached connection for `key` with one session more, or nullptr.
  std::shared_ptr<RadosCluster> Take(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return nullptr;
    ++it->second.sessions;
    return it->second.cluster;
  }

  // Caches a new connection with one session (or counts one more session on
  // the entry a concurrent Open() made: the pool gave both the same one).
  void Put(const std::string& key, std::shared_ptr<RadosCluster> cluster) {
    std::lock_guard lock(mu_);
    auto& e = entries_[key];
    e.cluster = std::move(cluster);
    ++e.sessions;
  }

  std::unique_ptr<ConnectionLease> Lease(const std::string& key);

  void Release(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    if (it->second.sessions > 0) --it->second.sessions;
    it->second.last_used = std::chrono::steady_clock::now();
  }

  int size() const {
    std::lock_guard lock(mu_);
    return static_cast<int>(entries_.size());
  }

 private:
  struct Entry {
    std::shared_ptr<RadosCluster> cluster;
    int sessions = 0;
    std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
  };
  const std::chrono::seconds idle_keep_;
  mutable std::mutex mu_;  // never held across a connect or a shutdown
  std::map<std::string, Entry> entries_;
};

class CacheLease final : public ConnectionLease {
 public:
  CacheLease(std::shared_ptr<ConnectionCache> cache, std::string key)
      : cache_(std::move(cache)), key_(std::move(key)) {}
  ~CacheLease() override { cache_->Release(key_); }

 private:
  std::shared_ptr<ConnectionCache> cache_;
  std::string key_;
};

std::unique_ptr<ConnectionLease> ConnectionCache::Lease(const std::string& key) {
  return std::make_unique<CacheLease>(shared_from_this(), key);
}

class LibrbdStore final : public CephStore {
 public:
  explicit LibrbdStore(LibrbdStoreOptions o) : cache_(std::make_shared<ConnectionCache>(o.idle_keep)) {}

  Result<std::unique_ptr<CephSession>> Open(const CephTarget& target, const CephUser& user) override {
    cache_->Sweep();
    if (target.mon_host.empty()) return Err(EINVAL, "no monitors given for pool '{}'", target.pool);
    if (target.pool.empty()) return Err(EINVAL, "no pool given");
    if (user.key.empty()) return Err(EINVAL, "no key given for {}", user.client_name);
    ClusterOptions o;
    if (auto s = SetClientName(&o, user.client_name); !s) return Unexpected(s.error());
    // An empty ceph.conf: with conf_path "" RadosCluster::Connect would read
    // $CEPH_CONF or /etc/ceph/ceph.conf, and the controller reads none.
    o.conf_path = "/dev/null";
    o.mon_host = target.mon_host;
    o.key = user.key;
    o.read_ceph_args = false;
    o.connect_timeout = user.connect_timeout;
    std::string key = o.PoolKey();

    std::shared_ptr<RadosCluster> cluster = cache_->Take(key);
    if (cluster == nullptr) {
      // Connects outside every lock of ours; the pool makes concurrent
      // Open()s of one user share one connect.
      auto c = pool_.Get(o);
      if (!c) return Unexpected(c.error());
      cluster = *c;
      // Monitor commands (df) wait no longer than a connect may.
      rados_conf_set(cluster->handle(), "rados_mon_op_timeout", std::to_string(o.connect_timeout.count()).c_str());
      cache_->Put(key, cluster);
    }
    return std::unique_ptr<CephSession>(new LibrbdSession(std::move(cluster), cache_->Lease(key), target));
  }

  int connections() const { return cache_->size(); }

 private:
  std::shared_ptr<ConnectionCache> cache_;
  ClusterPool pool_;
};

}  // namespace

std::unique_ptr<CephStore> MakeLibrbdStore(LibrbdStoreOptions options) {
  return std::make_unique<LibrbdStore>(options);
}

int CachedConnectionCount(const CephStore& store) {
  auto* s = dynamic_cast<const LibrbdStore*>(&store);
  return s == nullptr ? -1 : s->connections();
}

const void* SessionClusterHandle(const CephSession& session) {
  auto* s = dynamic_cast<const LibrbdSession*>(&session);
  return s == nullptr ? nullptr : s->cluster_handle();
}

LibrbdSession::~LibrbdSession() {
  if (io_ != nullptr) rados_ioctx_destroy(io_);
}

Result<rados_ioctx_t> LibrbdSession::Io() {
  if (io_ == nullptr) {
    auto io = cluster_->OpenPool(target_.pool, target_.ns);
    if (!io) return Unexpected(io.error());
    io_ = *io;
  }
  return io_;
}

std::string LibrbdSession::Spec(const std::string& image) const {
  return target_.ns.empty() ? fmt::format("{}/{}", target_.pool, image)
                            : fmt::format("{}/{}/{}", target_.pool, target_.ns, image);
}

std::string LibrbdSession::PoolName() const {
  return target_.ns.empty() ? fmt::format("pool '{}'", target_.pool)
                            : fmt::format("pool '{}' namespace '{}'", target_.pool, target_.ns);
}

Result<uint64_t> ParseDfMaxAvail(std::string_view df_json, const std::string& pool) {
  try {
    auto j = nlohmann::json::parse(df_json);
    if (!j.is_object() || !j.contains("pools") || !j["pools"].is_array()) {
      return Err(EINVAL, "the monitors' df answer has no pool list");
    }
    for (const auto& p : j["pools"]) {
      if (p.value("name", "") != pool) continue;
      const auto& stats = p.at("stats");
      return stats.at("max_avail").get<uint64_t>();
    }
    return Err(ENODATA,
               "the cluster reports no usage for pool '{}' (the monitors learn it from a ceph-mgr: is one running?)",
               pool);
  } catch (const nlohmann::json::exception& e) {
    return Err(EINVAL, "cannot read the monitors' df answer for pool '{}': {}", pool, e.what());
  }
}

Result<uint64_t> LibrbdSession::AvailableBytes() {
  if (auto io = Io(); !io) return Unexpected(io.error());  // ENOENT for an unknown pool, not ENODATA
  const char* cmd[] = {R"({"prefix":"df","format":"json"})"};
  char* out = nullptr;
  char* status = nullptr;
  size_t out_len = 0, status_len = 0;
  int r = rados_mon_command(cluster_->handle(), cmd, 1, "", 0, &out, &out_len, &status, &status_len);
  std::string answer(out == nullptr ? "" : std::string(out, out_len));
  std::string why(status == nullptr ? "" : std::string(status, status_len));
  rados_buffer_free(out);
  rados_buffer_free(status);
  if (r < 0) {
    return Err(-r, "cannot ask the monitors for the free space of {}: {}{}{}", PoolName(), Why(r),
               why.empty() ? "" : ": ", why);
  }
  return ParseDfMaxAvail(answer, target_.pool);
}

}  // namespace rbdnbd::csi
