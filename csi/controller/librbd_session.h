// LibrbdSession: one CephSession on one pooled connection, pool and RADOS
// namespace (librbd_store.h says how it behaves). Internal to
// rbdnbd_csi_ceph: the methods live in librbd_images.cc, librbd_snapshots.cc
// and librbd_journal.cc.
//
// Threads: a session is used by one request on one thread (ceph_store.h), so
// it has no lock; the lazily made ioctx is its only mutable state.
#pragma once

#include <rados/librados.h>
#include <rbd/librbd.h>

#include <memory>
#include <string>

#include "csi/controller/ceph_store.h"
#include "rbd/cluster.h"

namespace rbdnbd::csi {

// Held by a session for its lifetime; its destructor tells the store the
// connection is idle from now on (or one session less busy).
class ConnectionLease {
 public:
  virtual ~ConnectionLease() = default;
};

class LibrbdSession final : public CephSession {
 public:
  LibrbdSession(std::shared_ptr<RadosCluster> cluster, std::unique_ptr<ConnectionLease> lease, CephTarget target)
      : cluster_(std::move(cluster)), lease_(std::move(lease)), target_(std::move(target)) {}
  ~LibrbdSession() override;
  LibrbdSession(const LibrbdSession&) = delete;
  LibrbdSession& operator=(const LibrbdSession&) = delete;

  Result<ImageInfo> Stat(const std::string& image) override;
  Result<void> Create(const NewImage& image) override;
  Result<void> Clone(CephSession& src, const std::string& src_image, const std::string& src_snap,
                     const NewImage& image) override;
  Result<void> Resize(const std::string& image, uint64_t size_bytes) override;
  Result<void> FormatLuks(const std::string& image, LuksFormat format, const Secret& passphrase) override;
  Result<void> Flatten(const std::string& image) override;
  Result<RemoveOutcome> Remove(const std::string& image) override;
  Result<RemoveOutcome> RemoveNew(const std::string& image) override;
  Result<int> PurgeTrash(const std::string& name_prefix) override;
  Result<int> CountTrash(const std::string& name_prefix) override;

  Result<SnapInfo> CreateSnapshot(const std::string& image, const std::string& snap, QuiesceMode quiesce) override;
  Result<SnapInfo> StatSnapshot(const std::string& image, const std::string& snap) override;
  Result<void> RemoveSnapshot(const std::string& image, const std::string& snap) override;
  Result<std::vector<std::string>> SnapshotNames(const std::string& image) override;

  Result<std::optional<std::string>> JournalGet(const std::string& object, const std::string& key) override;
  Result<std::string> JournalReserve(const std::string& object, const std::string& key,
                                     const std::string& value) override;
  Result<void> JournalSwap(const std::string& object, const std::string& key, const std::string& expected,
                           const std::string& value) override;
  Result<bool> JournalRemove(const std::string& object, const std::string& key, const std::string& expected) override;
  Result<std::vector<std::pair<std::string, std::string>>> JournalList(const std::string& object,
                                                                       const std::string& prefix,
                                                                       const std::string& after, size_t max) override;

  Result<uint64_t> AvailableBytes() override;

  rados_t cluster_handle() const { return cluster_->handle(); }
  const CephTarget& target() const { return target_; }

  // The ioctx of the pool and namespace, made on first use: an unknown pool
  // is ENOENT naming it, from the first call that needs the pool.
  Result<rados_ioctx_t> Io();
  // "pool/image" or "pool/ns/image", for messages.
  std::string Spec(const std::string& image) const;
  // "pool 'kube'" or "pool 'kube' namespace 'ns'", for messages.
  std::string PoolName() const;

 private:
  // SnapInfo of `snap` on an open image (user namespace only).
  Result<SnapInfo> SnapOf(rbd_image_t img, const std::string& image, const std::string& snap);
  // Parents above the open image (0: none).
  Result<uint32_t> CloneDepth(rbd_image_t img, const std::string& image);

  std::shared_ptr<RadosCluster> cluster_;
  std::unique_ptr<ConnectionLease> lease_;  // declared after cluster_: released before it
  CephTarget target_;
  rados_ioctx_t io_ = nullptr;
};

}  // namespace rbdnbd::csi
