#include "rbd/cluster.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "rbd/mon_probe.h"

namespace rbdnbd {

std::string ClusterOptions::PoolKey() const {
  return fmt::format("{}\n{}\n{}\n{}\n{}\n{}", client_name, conf_path, mon_host, keyring_path,
                     key.empty() ? 0 : std::hash<std::string>{}(key.reveal()), read_ceph_args);
}

Result<void> SetClientId(ClusterOptions* options, std::string_view id) {
  if (id.empty() || id.find_first_of(" \t\n/") != std::string_view::npos) {
    return Err(EINVAL, "bad client id '{}'", id);
  }
  options->client_name = "client." + std::string(id);
  return {};
}

Result<void> SetClientName(ClusterOptions* options, std::string_view name) {
  auto dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size() ||
      name.find_first_of(" \t\n/") != std::string_view::npos) {
    return Err(EINVAL, "bad client name '{}' (expected TYPE.ID, e.g. client.kube)", name);
  }
  options->client_name = std::string(name);
  return {};
}

namespace {

// The connect failure's message; *code may be changed to what it really was
// (a v1 refusal arrives as ETIMEDOUT, but it is a refusal: EACCES).
std::string DescribeConnectError(int r, const ClusterOptions& o, const std::string& mons, int* code) {
  switch (-r) {
    case ETIMEDOUT: {
      std::string where = mons.empty() ? "(from ceph.conf)" : mons;
      switch (ProbeMonitors(MonitorEndpoints(mons), std::chrono::seconds(3))) {
        case MonitorReach::kNothingAccepts:
          return fmt::format(
              "nothing accepts connections at the monitor addresses {} (monitors down or unreachable, or a wrong "
              "-m / ceph.conf); gave up after {} s",
              where, o.connect_timeout.count());
        case MonitorReach::kNoBanner:
          return fmt::format(
              "the monitors at {} accept TCP connections but send no Ceph banner: they are hung, stopped or "
              "overloaded (this is not an authentication problem); gave up after {} s",
              where, o.connect_timeout.count());
        case MonitorReach::kAnswers:
          // Ceph's v1 protocol (a bare IP:PORT other than :3300) retries a
          // refused key until the timeout instead of failing at once.
          *code = EACCES;
          return fmt::format(
              "the monitors at {} answer but did not let {} in within {} s: authentication failed, they refuse it (a "
              "wrong key or an unknown user; with a bare IP:PORT Ceph uses its v1 protocol, which retries a "
              "refused key until the timeout: give the monitors as v2:IP:PORT to be refused at once)",
              where, o.client_name, o.connect_timeout.count());
      }
      return fmt::format("monitors {} did not answer within {} s", where, o.connect_timeout.count());
    }
    case EACCES:
    case EPERM:
      // The monitor refuses a user without mon caps exactly like a bad key.
      return fmt::format("authentication failed: the monitors refused {} (a wrong key, an unknown user, or no mon caps)",
                         o.client_name);
    case ENOENT:
      return fmt::format("no key for {}: give --keyring, --keyfile or --key-fd, or put a keyring in ceph.conf",
                         o.client_name);
    case EINVAL:
      return fmt::format("invalid key or configuration for {}", o.client_name);
    default:
      return fmt::format("{} ({})", strerror(-r), -r);
  }
}

// rados_conf_set with a readable error. Never pass a secret's value in `what`.
Result<void> Set(rados_t c, const char* option, const std::string& value, const char* what) {
  int r = rados_conf_set(c, option, value.c_str());
  if (r < 0) return Err(-r, "invalid {}: {}", what, strerror(-r));
  return {};
}

// Settings where a gateway wants another value than Ceph's default. They are
// read as a ceph.conf of their own, before the user's: the user's ceph.conf and
// CEPH_ARGS override them as usual (rados_conf_set cannot do that: it outranks
// both), and like any ceph.conf value they outrank the monitors' config database.
struct TunedDefault {
  const char* option;
  const char* value;
};
constexpr TunedDefault kTunedDefaults[] = {
    // librados runs librbd's per-I/O asio work (dispatching each aio call,
    // completing it) on this many threads. With Ceph's 2, consecutive steps of
    // one I/O bounce between the two threads; with 1 they stay on one: 8-15%
    // less gateway CPU per 4k I/O and 3-8% more IOPS at QD32 (bench/RESULTS.md).
    // One thread does ~20 us of this work per I/O on the bench machine, so a
    // node driving more than ~50k IOPS through one cluster connection should
    // raise it in ceph.conf.
    {"librados_thread_count", "1"},
    // librbd's "simple" scheduler holds back a write to an object that already
    // has one in flight, by half the average write latency, hoping to merge it
    // with a sequential neighbour. In front of a block layer that merges
    // sequential I/O before it reaches us, that mostly delays random writes:
    // "none" measured 15-20% less gateway CPU per 4k random write at QD32 and
    // no loss on 1M sequential writes (bench/RESULTS.md).
    {"rbd_io_scheduler", "none"},
};
// Tried and NOT set (bench/profile-daemon.sh on the host, 4k QD32, 3-5 interleaved rounds;
// bench/results/profile-daemon-2026-12-07-analysis.md): rbd_non_blocking_aio=false
// (one thread hand-off fewer: half the futex calls per I/O, 0.77-0.90x the CPU per I/O at
// QD1, but 0.86-1.37x at QD32 across four runs; and it lets a librbd call, e.g. the
// objecter's throttle, block a worker loop and every device on it; ceph.conf can set it),
// debug_* = 0/0 for every client subsystem (librbd's I/O path logs at levels above the
// default gather level 5: 1.18-1.25x reads, 0.93-0.98x writes, noise), ms_async_op_threads=1
// (one messenger thread carries the one OSD connection anyway: 0.87-1.07x), rbd_cache=true
// (1.66x reads). ms_crc_data=false measured 0.86x writes / 1.21x reads, within the noise,
// and trades integrity: never a default.

// Reads kTunedDefaults from an in-memory file (nothing on disk). Best effort:
// without memfd librbd's own defaults stay.
void ReadTunedDefaults(rados_t c) {
  std::string text = "[global]\n";
  for (const auto& t : kTunedDefaults) text += fmt::format("{} = {}\n", t.option, t.value);
  UniqueFd fd(memfd_create("rbd-nbdd-ceph-defaults", MFD_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    spdlog::debug("cannot stage rbd-nbdd's Ceph defaults: {}", strerror(errno));
    return;
  }
  std::string path = fmt::format("/proc/self/fd/{}", fd.get());
  if (int r = rados_conf_read_file(c, path.c_str()); r < 0) {
    spdlog::debug("cannot read rbd-nbdd's Ceph defaults: {}", strerror(-r));
  }
}

// The effective values of the tuned options, "a=1, b=none", for the log.
std::string TunedSettings(rados_t c) {
  std::string out;
  for (const auto& t : kTunedDefaults) {
    char value[64] = "?";
    rados_conf_get(c, t.option, value, sizeof(value));
    out += fmt::format("{}{}={}", out.empty() ? "" : ", ", t.option, value);
  }
  return out;
}

}  // namespace

Result<std::shared_ptr<RadosCluster>> RadosCluster::Connect(const ClusterOptions& o) {
  rados_t c = nullptr;
  int r = rados_create2(&c, "ceph", o.client_name.c_str(), 0);
  if (r < 0) return Err(-r, "cannot create a cluster handle for {}: {}", o.client_name, strerror(-r));
  auto fail = [&c](Unexpected u) {
    rados_shutdown(c);
    return u;
  };
  // Defaults of our own, before anything the user configured: no admin socket
  // or log file per image (logs go through our logger), no stderr noise.
  rados_conf_set(c, "admin_socket", "");
  rados_conf_set(c, "log_file", "");
  rados_conf_set(c, "log_to_stderr", "false");
  rados_conf_set(c, "err_to_stderr", "false");
  ReadTunedDefaults(c);
  if (!o.conf_path.empty()) {
    r = rados_conf_read_file(c, o.conf_path.c_str());
    if (r < 0) return fail(Err(-r, "cannot read ceph.conf '{}': {}", o.conf_path, strerror(-r)));
  } else {
    r = rados_conf_read_file(c, nullptr);  // $CEPH_CONF, /etc/ceph/ceph.conf, ...
    if (r < 0 && o.mon_host.empty()) {
      return fail(Err(ENOENT, "no ceph.conf found and no monitors given: use -m MON or -c CONF"));
    }
  }
  if (o.read_ceph_args) {
    r = rados_conf_parse_env(c, nullptr);
    if (r < 0) return fail(Err(-r, "invalid CEPH_ARGS: {}", strerror(-r)));
  }
  if (!o.mon_host.empty()) {
    if (auto s = Set(c, "mon_host", o.mon_host, "monitor address (-m)"); !s) return fail(Unexpected(s.error()));
  }
  if (!o.keyring_path.empty()) {
    if (auto s = Set(c, "keyring", o.keyring_path, "keyring path"); !s) return fail(Unexpected(s.error()));
  }
  if (!o.key.empty()) {
    if (rados_conf_set(c, "key", o.key.reveal().c_str()) < 0) {
      return fail(Err(EINVAL, "the key for {} is not valid", o.client_name));
    }
  }
  auto timeout = std::to_string(o.connect_timeout.count());
  if (auto s = Set(c, "client_mount_timeout", timeout, "connect timeout"); !s) return fail(Unexpected(s.error()));

  std::string tuned = TunedSettings(c);
  char mons[1024] = "";
  rados_conf_get(c, "mon_host", mons, sizeof(mons));
  std::string mon_host = mons;

  r = rados_connect(c);
  if (r < 0) {
    int code = -r;
    std::string why = DescribeConnectError(r, o, mon_host, &code);
    return fail(Err(code, "cannot connect to the cluster as {}: {}", o.client_name, why));
  }
  spdlog::info("connected to the cluster at {} as {} ({})", mon_host, o.client_name, tuned);
  return std::shared_ptr<RadosCluster>(new RadosCluster(c, o.client_name, mon_host));
}

RadosCluster::~RadosCluster() {
  rados_shutdown(cluster_);
  spdlog::debug("disconnected from the cluster as {}", client_name_);
}

std::string RadosCluster::Address() const {
  char* addrs = nullptr;
  if (rados_getaddrs(cluster_, &addrs) < 0 || addrs == nullptr) return "";
  std::string a = addrs;
  rados_buffer_free(addrs);
  return a;
}

Result<void> RadosCluster::Blocklist(const std::string& address, uint32_t expire_s) const {
  // rados_getaddrs() may give "[v2:ip:port/nonce,v1:ip:port/nonce]"; the
  // blocklist takes one "ip:port/nonce".
  std::string a = address;
  if (!a.empty() && a.front() == '[') a = a.substr(1, a.find_first_of(",]") - 1);
  if (auto colon = a.find(':'); a.starts_with("v2:") || a.starts_with("v1:")) a = a.substr(colon + 1);
  int r = rados_blocklist_add(cluster_, a.data(), expire_s);
  if (r < 0) return Err(-r, "cannot fence client {}: {}", a, strerror(-r));
  return {};
}

Result<rados_ioctx_t> RadosCluster::OpenPool(const std::string& pool, const std::string& ns) const {
  rados_ioctx_t io = nullptr;
  int r = rados_ioctx_create(cluster_, pool.c_str(), &io);
  if (r == -ENOENT) return Err(ENOENT, "pool '{}' does not exist", pool);
  if (r < 0) return Err(-r, "cannot open pool '{}': {}", pool, strerror(-r));
  rados_ioctx_set_namespace(io, ns.c_str());
  return io;
}

Result<std::shared_ptr<RadosCluster>> ClusterPool::Get(const ClusterOptions& options) {
  std::string key = options.PoolKey();
  std::shared_ptr<Pending> pending;
  {
    std::unique_lock lock(mu_);
    if (auto it = clusters_.find(key); it != clusters_.end()) {
      if (auto live = it->second.lock()) return live;
    }
    if (auto p = pending_.find(key); p != pending_.end()) {
      // Someone is connecting with these very options: wait for that answer
      // rather than open a second connection. Other options never wait here.
      pending = p->second;
      cv_.wait(lock, [&pending] { return pending->done; });
      return pending->result;
    }
    pending = std::make_shared<Pending>();
    pending_[key] = pending;
  }
  // The connect may wait up to connect_timeout on the network: never under mu_.
  auto c = RadosCluster::Connect(options);
  std::lock_guard lock(mu_);
  pending->result = c;
  pending->done = true;
  pending_.erase(key);
  if (c) clusters_[key] = *c;
  cv_.notify_all();
  return c;
}

size_t ClusterPool::live() {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [key, weak] : clusters_) n += weak.expired() ? 0 : 1;
  return n;
}

}  // namespace rbdnbd
