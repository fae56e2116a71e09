// The real CephStore: librbd and librados (C API) in process, on the gateway's
// pooled cluster connections (rbd/cluster.h). The contract is ceph_store.h's;
// this header adds what is particular to this implementation.
//
// Connections
// -----------
// * One connection per (monitors, user, key): Open() takes it from a
//   ClusterPool and keeps it for `idle_keep` after its last session closed.
//   Idle connections are swept on Open() (no timer thread): a controller that
//   gets no request keeps its last connections until the next one.
// * No ceph.conf, no keyring file, no CEPH_ARGS, no $CEPH_CONF: the monitors
//   and the key come from the call only. (ClusterOptions with an empty
//   conf_path would read $CEPH_CONF or /etc/ceph/ceph.conf: we hand it
//   /dev/null, an empty ceph.conf, instead.)
// * Connection errors are the gateway's (RadosCluster::Connect): ETIMEDOUT
//   saying which of three timeouts it was, EACCES for a refusal.
// * Threads: as ceph_store.h. The store's one mutex (the connection cache) is
//   never held across a connect or a disconnect.
//
// Bounds
// ------
// * The connect is bounded by CephUser::connect_timeout, and so are monitor
//   commands (df, through rados_mon_op_timeout on the connection).
// * librbd has no per-operation timeout: every librbd call and every omap
//   operation waits for as long as the OSDs take (I/O timeouts stay at Ceph's
//   default, wait forever, as the gateway's). A CSI sidecar's own deadline
//   ends the gRPC call; the librbd call then finishes on its own thread.
//
// Behaviour worth knowing (checked on a Pacific 16.2 cluster by
// tests/ceph/csi_ceph_store_test.cc)
// ------------------------------------------------------------------------
// * Remove() opens the image read-only, which registers no watch, so our own
//   handle is never counted among the watchers. An image with any snapshot
//   (user or trash namespace) goes to the trash (delay 0): clones hang off
//   snapshots only, so "no snapshot" means "no clone" too.
// * PurgeTrash() deletes an entry only once it has no snapshot at all: a user
//   snapshot left on a trashed image (one without clones, which the caller
//   should have removed) keeps it in the trash for good.
// * RemoveSnapshot() of a snapshot that clone-v2 children use moves it to the
//   trash snapshot namespace; librbd removes it when its last child goes.
// * QuiesceMode::kBestEffort: librbd takes the snapshot when a watcher fails
//   to quiesce, but it tells its caller nothing about it (the error is only in
//   librbd's own log). SnapInfo::quiesce_failed therefore stays false here.
// * AvailableBytes() reads the pool's max_avail from the monitors' "df"
//   (client.kube with mon 'profile rbd' may run it). The monitors know pool
//   usage only from a ceph-mgr: on a cluster that never had one, "df" lists no
//   pools and AvailableBytes() answers ENODATA naming the pool; when the mgr
//   is down, the monitors answer with the last numbers it sent (stale).
// * ImageInfo::features leaves out librbd's internal bits
//   (RBD_FEATURES_INTERNAL: "operations", which clone v2 sets on a parent and
//   a child, and "migrating"): they are the features the image was made with.
// * librbd's C API calls progress callbacks without a null check (snapshot
//   create calls one while it notifies quiesce): every call passes a no-op.
// * Create() and Clone() write NewImage::metadata with one cls rbd.metadata_set
//   on the new image's header (librbd_cls.h), not through rbd_open +
//   rbd_metadata_set + rbd_close: a create with a key costs ~5 ms and ~3 ms of
//   CPU instead of ~14 ms and ~18 ms (csi_ceph_store_test's measure). So keys
//   must start with "csi." and hold no NUL (EINVAL naming the key, and the
//   image made already is removed again): librbd gives other keys meanings
//   ("conf_*") that only its own path checks. With journaling the keys still
//   go through librbd, so that the journal records them. A clone is opened
//   only when it must grow.
// * JournalList(max = 0) means no limit (as CSI's max_entries = 0).
// * JournalReserve() refuses an empty value (EINVAL): the atomic reservation
//   compares the key's current value with "" (a missing key compares as
//   empty), so an empty stored value would look free.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "csi/controller/ceph_store.h"

namespace rbdnbd::csi {

struct LibrbdStoreOptions {
  // How long a connection stays open after its last session ended.
  std::chrono::seconds idle_keep{300};
};

std::unique_ptr<CephStore> MakeLibrbdStore(LibrbdStoreOptions options = {});

// For tests and logs: how many connections the store keeps (live or idle).
// -1 if `store` is not a librbd store.
int CachedConnectionCount(const CephStore& store);
// For tests: the librados handle a session runs on (equal for sessions that
// share a connection); nullptr if `session` is not a librbd session.
const void* SessionClusterHandle(const CephSession& session);

// The pool's "max_avail" from the JSON of the monitor command {"prefix":"df"}.
// ENODATA when the pool is not listed (no ceph-mgr reported), EINVAL for JSON
// that is not a df answer.
Result<uint64_t> ParseDfMaxAvail(std::string_view df_json, const std::string& pool);

}  // namespace rbdnbd::csi
