// FakeCephStore: an in-memory CephStore for the controller's unit tests. It
// keeps the contract of csi/controller/ceph_store.h as the tests need it:
// pools and namespaces that must exist (ENOENT naming the pool), images with
// metadata, clone v2 parents (a removed snapshot that clones still use goes
// to the trash namespace; an image with snapshots goes to the trash), the
// trash purge, atomic journal reservations, cephx users (a wrong key is
// EACCES), unreachable monitors (ETIMEDOUT) and failures injected per method.
// Thread-safe: one mutex around everything, as the tests drive it from many
// threads.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "csi/controller/ceph_store.h"

namespace rbdnbd::csi::testing {

inline constexpr const char* kMonitors = "127.0.0.1:14200";
inline constexpr const char* kKubeKey = "AQCfakeKEYfakeKEYfakeKEYfakeKEYfake0==";

class FakeCephStore final : public CephStore {
 public:
  struct Snap {
    uint64_t id = 0;
    uint64_t size = 0;
    int64_t created = 0;
    bool trashed = false;
    int children = 0;
  };
  struct Parent {
    std::string pool_key;  // PoolKey() of the parent's pool/namespace
    std::string image;
    uint64_t snap_id = 0;  // the parent snapshot's id (its name changes in the trash)
  };
  struct Image {
    std::string id;
    uint64_t size = 0;
    uint64_t features = 0;
    std::string data_pool;
    uint64_t object_size = 0;
    std::map<std::string, std::string> metadata;
    std::map<std::string, Snap> snaps;
    std::optional<Parent> parent;
    uint32_t depth = 0;
    int watchers = 0;
    std::string luks;  // "", "luks1", "luks2"
  };

  FakeCephStore();

  Result<std::unique_ptr<CephSession>> Open(const CephTarget& target, const CephUser& user) override;

  // Set-up and inspection (tests).
  void AddPool(const std::string& pool, const std::string& ns = "");
  void AddUser(const std::string& client_name, const std::string& key);
  void AddReachableMonitors(const std::string& mon_host);
  // Every later call of `method` ("Create", "Clone", "JournalReserve", ...)
  // fails with `code` (0: stop failing).
  void Fail(const std::string& method, int code);
  // Called inside JournalReserve before it decides (race tests).
  void OnReserve(std::function<void()> hook);
  // Runs `hook` once, on the thread of the next call of `method` ("Create",
  // "Clone", "JournalSwap"), before that call does anything and with no lock
  // held: a test runs another controller's whole request there, at that
  // point of this one (a deterministic interleaving).
  void BeforeOnce(const std::string& method, std::function<void()> hook);
  void SetQuiesceFails(bool fails);
  void SetAvailable(uint64_t bytes);

  std::optional<Image> GetImage(const std::string& pool, const std::string& ns, const std::string& name);
  void SetWatchers(const std::string& pool, const std::string& ns, const std::string& name, int watchers);
  // Every head image name in pool/ns.
  std::vector<std::string> Images(const std::string& pool, const std::string& ns = "");
  int TrashCount(const std::string& pool, const std::string& ns = "");
  std::map<std::string, std::string> Journal(const std::string& pool, const std::string& ns, const std::string& object);
  void PutJournal(const std::string& pool, const std::string& ns, const std::string& object, const std::string& key,
                  const std::string& value);
  int opens() const { return opens_.load(); }
  int creates() const { return creates_.load(); }

  static std::string PoolKey(const std::string& pool, const std::string& ns) { return pool + "\x1f" + ns; }

 private:
  friend class FakeSession;
  // The hook BeforeOnce() set for `method`, taken (it runs once); the caller
  // runs it with no lock held.
  void RunBeforeOnce(const std::string& method);
  struct PoolState {
    std::map<std::string, Image> images;
    std::map<std::string, Image> trash;  // by original name
    std::map<std::string, std::map<std::string, std::string>> journals;
  };

  std::mutex mu_;
  std::set<std::string> mon_hosts_;
  std::map<std::string, std::string> users_;
  std::map<std::string, PoolState> pools_;  // by PoolKey
  std::map<std::string, int> failures_;
  std::function<void()> on_reserve_;
  std::map<std::string, std::function<void()>> before_once_;
  bool quiesce_fails_ = false;
  uint64_t available_ = 100ULL << 30;
  uint64_t next_id_ = 1;
  std::atomic<int> opens_{0};
  std::atomic<int> creates_{0};
};

}  // namespace rbdnbd::csi::testing
