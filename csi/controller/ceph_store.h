// CephStore / CephSession: everything the CSI controller asks of Ceph, as one
// small interface. The real one (librbd_store.{h,cc}) runs librbd and librados
// in process on the gateway's pooled cluster connection (rbd/cluster.h); the
// controller's unit tests use an in-memory fake. Nothing here knows CSI.
//
// Contract
// --------
// * Every method returns Result<T>. Error.code is a positive errno from Ceph
//   or from the checks here, and the message names the object (pool, image,
//   snapshot) and the cause in one line, never a key:
//     ENOENT       no such pool / image / snapshot / journal key
//     EEXIST       an image of that name exists already (Create, Clone)
//     EBUSY        the image has watchers (Remove); a trash entry still has
//                  snapshots (internal to Purge, never returned by it)
//     EACCES/EPERM cephx refused the user, or the user lacks the caps
//     ETIMEDOUT    the monitors did not answer within the connect timeout
//     EINVAL       a bad feature set, object size, size, ...
// * CephStore::Open() is the only place that connects. It gets the pooled
//   connection for (monitors, user, key) from a ClusterPool, and keeps it
//   open for `idle_keep` after its last session ends, so a controller makes
//   one connection per cluster and user, not one per request. A connection
//   that failed is never cached. Open() does not check that the pool exists:
//   the first call that needs it does (ENOENT naming the pool).
// * A CephSession is one user on one pool and RADOS namespace. Sessions are
//   cheap, used by one request on one thread, and closed by destruction.
//   CephStore is thread-safe: many requests open sessions at once.
// * Images are named by the caller (csi-vol-<uuid>, csi-snap-<uuid>). Trashed
//   images are never addressed by the caller: Remove() may move an image to
//   the trash, and PurgeTrash() deletes trash entries that no longer hold
//   snapshots (clone v2 removes a trashed parent snapshot once its last child
//   is gone), repeating until nothing more goes.
// * Journal*: one RADOS object per (pool, namespace, object name) holding an
//   omap of key -> value. JournalReserve() is atomic in RADOS (an omap_cmp
//   guarded write): of two concurrent reservations of one key, from one
//   process or two, exactly one value is stored, and both callers learn it.
//   JournalSwap() and JournalRemove() are guarded the same way, by the value
//   the caller last saw: a record another caller changed meanwhile is left as
//   it is (ECANCELED), so of two controllers (two processes, no shared lock)
//   working on one name, only the one that holds the record changes it.
// * Snapshot creation with quiesce: librbd notifies every client watching the
//   image (the node daemons that map it) to quiesce, takes the snapshot, and
//   notifies unquiesce. kRequired fails (the librbd error) when a watcher
//   fails to quiesce; kBestEffort takes the snapshot anyway (crash-consistent
//   then) and says so in SnapInfo::quiesce_failed; kSkip sends no notification.
// * Threads: any thread; a session's methods may block on the network (they
//   hold no lock of the caller's while they do).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "rbd/secret.h"

namespace rbdnbd::csi {

// Where: a cluster, a pool and a RADOS namespace ("" is the default one).
struct CephTarget {
  std::string mon_host;  // comma-separated monitor addresses
  std::string pool;
  std::string ns;
};

// Who: a cephx user and its key (held in memory only).
struct CephUser {
  std::string client_name;  // "client.kube"
  Secret key;
  std::chrono::seconds connect_timeout{30};
};

struct NewImage {
  std::string name;
  uint64_t size_bytes = 0;
  uint64_t features = 0;         // RBD_FEATURE_* bits, exactly these
  std::string data_pool;         // empty: data in the image's pool
  uint64_t object_size = 0;      // bytes, a power of two 4 KiB..32 MiB; 0: Ceph's default
  // Image metadata (rbd image-meta), set at creation. Keys start with "csi." and
  // neither keys nor values hold a NUL byte (EINVAL naming the key otherwise,
  // and nothing is left behind).
  std::map<std::string, std::string> metadata;
};

struct ImageInfo {
  std::string name;
  std::string id;
  uint64_t size_bytes = 0;
  uint64_t features = 0;
  std::string data_pool;
  std::map<std::string, std::string> metadata;  // keys starting "csi." only
  uint32_t clone_depth = 0;                     // parents above it (0: no parent)
};

struct SnapInfo {
  std::string image;  // the image the snapshot is on
  std::string name;
  uint64_t id = 0;
  uint64_t size_bytes = 0;
  int64_t created_unix_s = 0;
  int32_t created_nanos = 0;
  bool quiesce_failed = false;  // kBestEffort only: a watcher did not quiesce
};

enum class QuiesceMode { kRequired, kBestEffort, kSkip };

enum class RemoveOutcome {
  kRemoved,   // the image is gone
  kTrashed,   // it still had snapshots or clones: moved to the trash, purged later
  kNotFound,  // there was no such image (idempotent deletes)
};

enum class LuksFormat { kLuks1, kLuks2 };

class CephSession {
 public:
  virtual ~CephSession() = default;

  // Images (head images in this pool/namespace; never trash entries).
  virtual Result<ImageInfo> Stat(const std::string& image) = 0;
  virtual Result<void> Create(const NewImage& image) = 0;
  // A clone (v2: no protect step) of src_image@src_snap, which live in the
  // pool/namespace of `src` (a session of the same cluster and user, possibly
  // this one), as `image` here. A bigger image.size_bytes than the snapshot's
  // grows the clone.
  virtual Result<void> Clone(CephSession& src, const std::string& src_image,
                             const std::string& src_snap, const NewImage& image) = 0;
  virtual Result<void> Resize(const std::string& image, uint64_t size_bytes) = 0;
  // Formats the image's LUKS header through librbd (rbd_encryption_format).
  virtual Result<void> FormatLuks(const std::string& image, LuksFormat format,
                                  const Secret& passphrase) = 0;
  // Copies every block of the parents into the image (deep clone chains).
  virtual Result<void> Flatten(const std::string& image) = 0;
  // EBUSY (naming the image and how many watchers) while any client watches
  // it, i.e. it is mapped somewhere; kTrashed when it has snapshots or clones.
  virtual Result<RemoveOutcome> Remove(const std::string& image) = 0;
  // Remove() for an image a failed create made, which nothing can have cloned:
  // never the trash. ENOTEMPTY while it has a snapshot (another attempt made
  // one meanwhile: the caller removes it and tries again), EBUSY as Remove().
  virtual Result<RemoveOutcome> RemoveNew(const std::string& image) = 0;
  // Deletes the trash entries whose name starts with `name_prefix` and that
  // hold no snapshot any more; returns how many went.
  virtual Result<int> PurgeTrash(const std::string& name_prefix) = 0;
  // How many trash entries start with `name_prefix` (for tests and logs).
  virtual Result<int> CountTrash(const std::string& name_prefix) = 0;

  // Snapshots of a head image.
  virtual Result<SnapInfo> CreateSnapshot(const std::string& image, const std::string& snap,
                                          QuiesceMode quiesce) = 0;
  virtual Result<SnapInfo> StatSnapshot(const std::string& image, const std::string& snap) = 0;
  // The names of the image's own snapshots (the user namespace: never the
  // trash namespace's); ENOENT when there is no such image.
  virtual Result<std::vector<std::string>> SnapshotNames(const std::string& image) = 0;
  // ENOENT when there is no such snapshot. A snapshot that clones still use
  // goes to the trash namespace (clone v2) and vanishes with its last clone.
  virtual Result<void> RemoveSnapshot(const std::string& image, const std::string& snap) = 0;

  // The journal: omap key -> value on the RADOS object `object`.
  virtual Result<std::optional<std::string>> JournalGet(const std::string& object,
                                                        const std::string& key) = 0;
  // Stores `value` under `key` unless the key exists; returns the stored value
  // (ours, or the one that was there).
  virtual Result<std::string> JournalReserve(const std::string& object, const std::string& key,
                                             const std::string& value) = 0;
  // Sets `key` to `value` if its value is `expected`, byte for byte, in one
  // atomic step; ECANCELED (and no change) if it is anything else, a missing
  // key or object included.
  virtual Result<void> JournalSwap(const std::string& object, const std::string& key, const std::string& expected,
                                   const std::string& value) = 0;
  // Removes `key` if its value is `expected`, atomically: true. False when
  // there is no such key (or object) to remove; ECANCELED (and no change)
  // when it holds another value.
  virtual Result<bool> JournalRemove(const std::string& object, const std::string& key,
                                     const std::string& expected) = 0;
  // Up to `max` entries with key > `after` and starting with `prefix`, in key
  // order. A missing object is an empty journal.
  virtual Result<std::vector<std::pair<std::string, std::string>>> JournalList(
      const std::string& object, const std::string& prefix, const std::string& after, size_t max) = 0;

  // What the pool can still take: the cluster's df "max_avail" for the pool.
  virtual Result<uint64_t> AvailableBytes() = 0;
};

class CephStore {
 public:
  virtual ~CephStore() = default;
  virtual Result<std::unique_ptr<CephSession>> Open(const CephTarget& target, const CephUser& user) = 0;
};

}  // namespace rbdnbd::csi
