// RadosCluster: one librados connection, shared by every image opened with
// the same cluster settings and credentials (after SPDK's bdev_rbd).
//
// Contract
// --------
// * ClusterOptions say where the cluster is and who we are, in the Ceph way:
//   a ceph.conf (-c; default search when empty), CEPH_ARGS, monitors (-m),
//   the client name (--id/--name), and a keyring file or a key held in memory.
//   Later sources win: built-in defaults < ceph.conf < CEPH_ARGS < options.
// * The key is handed to librados in memory (the "key" option). It never
//   reaches a log, a child's argv, or a file.
// * Connect() is bounded by `connect_timeout` (client_mount_timeout), so
//   unreachable monitors give ETIMEDOUT with a clear message, never a hang.
//   Errors are one line, and a timeout says which of three it was: nothing
//   accepts at the monitor addresses, the monitors accept but send no banner
//   (hung or overloaded), or they answer but refuse us (see mon_probe.h).
// * ClusterPool::Get() returns the live connection for equal options or makes
//   one; the connection closes when its last user drops it. Thread-safe; a
//   connect in flight blocks only callers with the same options (they share
//   its result), never the others.
// * I/O timeouts stay at Ceph's defaults (0 = wait forever): when an OSD is
//   down for a while, I/O waits and then completes, as a disk would.
#pragma once

#include <rados/librados.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "rbd/secret.h"

namespace rbdnbd {

struct ClusterOptions {
  std::string client_name = "client.admin";  // --name client.X, or --id X
  std::string conf_path;                     // -c; empty: $CEPH_CONF, /etc/ceph/ceph.conf, ...
  std::string mon_host;                      // -m
  std::string keyring_path;                  // --keyring
  Secret key;                                // --keyfile, --key-fd, stdin
  bool read_ceph_args = true;                // honour $CEPH_ARGS
  std::chrono::seconds connect_timeout{30};

  // Identity for pooling: equal options share one connection. The key is
  // included only as a hash.
  std::string PoolKey() const;
};

// Sets client_name from `--id X` (client.X) or `--name TYPE.ID`.
Result<void> SetClientId(ClusterOptions* options, std::string_view id);
Result<void> SetClientName(ClusterOptions* options, std::string_view name);

class RadosCluster {
 public:
  static Result<std::shared_ptr<RadosCluster>> Connect(const ClusterOptions& options);
  ~RadosCluster();
  RadosCluster(const RadosCluster&) = delete;
  RadosCluster& operator=(const RadosCluster&) = delete;

  rados_t handle() const { return cluster_; }
  const std::string& client_name() const { return client_name_; }
  // For messages: the monitors we talk to (never credentials).
  const std::string& mon_host() const { return mon_host_; }

  // This client's address as the OSDs see it (for fencing it later).
  std::string Address() const;
  // Fences a dead client: the OSDs refuse it, drop its watches, and librbd can
  // then break its exclusive lock at once instead of waiting ~30 s for its
  // watch to time out.
  Result<void> Blocklist(const std::string& address, uint32_t expire_s) const;

  // Opens an I/O context on `pool` (and RADOS namespace `ns`).
  Result<rados_ioctx_t> OpenPool(const std::string& pool, const std::string& ns) const;

 private:
  RadosCluster(rados_t c, std::string name, std::string mon) : cluster_(c), client_name_(std::move(name)), mon_host_(std::move(mon)) {}
  rados_t cluster_;
  std::string client_name_;
  std::string mon_host_;
};

class ClusterPool {
 public:
  Result<std::shared_ptr<RadosCluster>> Get(const ClusterOptions& options);
  // Connections open now (some user still holds them); connects in flight
  // are not counted. Never waits on a connect.
  size_t live();

 private:
  // A connect in flight: callers with the same options wait for its result.
  struct Pending {
    bool done = false;
    Result<std::shared_ptr<RadosCluster>> result = Err(EAGAIN, "connecting");
  };
  std::mutex mu_;  // never held across a connect
  std::condition_variable cv_;
  std::map<std::string, std::weak_ptr<RadosCluster>> clusters_;
  std::map<std::string, std::shared_ptr<Pending>> pending_;
};

}  // namespace rbdnbd
