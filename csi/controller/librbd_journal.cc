// LibrbdSession: the name journal, an omap on one RADOS object.
//
// The reservation is atomic in the OSD: a write op that compares the key's
// value with "" (the OSD compares a missing key as an empty value) and sets
// it, so of two racing reservations exactly one matches; the other gets
// ECANCELED and reads the winner's value. The compare needs the object to
// exist (ENOENT otherwise), hence an idempotent create first. Swap and remove
// compare the key's value with the one the caller expects the same way.
#include "csi/controller/librbd_session.h"
#include "csi/controller/librbd_util.h"

namespace rbdnbd::csi {
namespace {

// A reservation that loses to a key removed again before we could read it
// tries again; more than this many rounds means something else is wrong.
constexpr int kReserveRounds = 8;
// Entries per omap read (the OSD caps a reply at osd_max_omap_entries_per_request).
constexpr uint64_t kListBatch = 512;

// Builds into `op`: "only if key's value compares `cmp_op` with `than`" (the
// whole op fails with ECANCELED otherwise), and, for AddGuardedSet, "set key =
// value". A missing key compares as "", and values are never empty, so EQ ""
// means "the key is absent".
void AddGuard(rados_write_op_t op, const std::string& key, uint8_t cmp_op, const std::string& than, int* cmp) {
  rados_write_op_omap_cmp2(op, key.c_str(), cmp_op, than.data(), key.size(), than.size(), cmp);
}

void AddGuardedSet(rados_write_op_t op, const std::string& key, uint8_t cmp_op, const std::string& than,
                   const std::string& value, int* cmp) {
  AddGuard(op, key, cmp_op, than, cmp);
  const char* keys[] = {key.c_str()};
  const char* vals[] = {value.data()};
  size_t key_lens[] = {key.size()};
  size_t val_lens[] = {value.size()};
  rados_write_op_omap_set2(op, keys, vals, key_lens, val_lens, 1);
}

}  // namespace

Result<std::optional<std::string>> LibrbdSession::JournalGet(const std::string& object, const std::string& key) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  ReadOp op;
  OmapIter it;
  int prval = 0;
  const char* keys[] = {key.c_str()};
  size_t key_lens[] = {key.size()};
  rados_read_op_omap_get_vals_by_keys2(op.get(), keys, 1, key_lens, it.out(), &prval);
  int r = rados_read_op_operate(op.get(), *io, object.c_str(), 0);
  if (r == -ENOENT) return std::optional<std::string>();
  if (r == 0 && prval < 0) r = prval;
  if (r < 0) return Err(-r, "cannot read key '{}' of journal '{}' in {}: {}", key, object, PoolName(), Why(r));
  std::string k, v;
  while (it.Next(&k, &v, &r)) {
    if (k == key) return std::optional<std::string>(std::move(v));
  }
  if (r < 0) return Err(-r, "cannot read key '{}' of journal '{}' in {}: {}", key, object, PoolName(), Why(r));
  return std::optional<std::string>();
}

Result<std::string> LibrbdSession::JournalReserve(const std::string& object, const std::string& key,
                                                  const std::string& value) {
  if (value.empty()) return Err(EINVAL, "cannot reserve key '{}' of journal '{}' with an empty value", key, object);
  auto io = Io();
  if (!io) return Unexpected(io.error());
  for (int round = 0; round < kReserveRounds; ++round) {
    {
      WriteOp create;
      rados_write_op_create(create.get(), LIBRADOS_CREATE_IDEMPOTENT, nullptr);
      if (int r = rados_write_op_operate2(create.get(), *io, object.c_str(), nullptr, 0); r < 0) {
        return Err(-r, "cannot create journal '{}' in {}: {}", object, PoolName(), Why(r));
      }
    }
    WriteOp op;
    int cmp = 0;
    AddGuardedSet(op.get(), key, LIBRADOS_CMPXATTR_OP_EQ, "", value, &cmp);
    int r = rados_write_op_operate2(op.get(), *io, object.c_str(), nullptr, 0);
    if (r == 0) return value;
    if (r == -ENOENT) continue;  // the object went between the two ops
    if (r != -ECANCELED) {
      return Err(-r, "cannot reserve key '{}' of journal '{}' in {}: {}", key, object, PoolName(), Why(r));
    }
    auto held = JournalGet(object, key);
    if (!held) return Unexpected(held.error());
    if (*held) return std::move(**held);
    // Removed again before we read it: the key is free once more.
  }
  return Err(EAGAIN, "cannot reserve key '{}' of journal '{}' in {}: it keeps changing", key, object, PoolName());
}

Result<void> LibrbdSession::JournalSwap(const std::string& object, const std::string& key,
                                        const std::string& expected, const std::string& value) {
  if (expected.empty() || value.empty()) {
    return Err(EINVAL, "cannot swap key '{}' of journal '{}' from or to an empty value", key, object);
  }
  auto io = Io();
  if (!io) return Unexpected(io.error());
  WriteOp op;
  int cmp = 0;
  AddGuardedSet(op.get(), key, LIBRADOS_CMPXATTR_OP_EQ, expected, value, &cmp);
  int r = rados_write_op_operate2(op.get(), *io, object.c_str(), nullptr, 0);
  if (r == -ENOENT || r == -ECANCELED) {
    return Err(ECANCELED, "key '{}' of journal '{}' in {} changed meanwhile (or is gone)", key, object, PoolName());
  }
  if (r < 0) return Err(-r, "cannot update key '{}' of journal '{}' in {}: {}", key, object, PoolName(), Why(r));
  return {};
}

Result<bool> LibrbdSession::JournalRemove(const std::string& object, const std::string& key,
                                          const std::string& expected) {
  if (expected.empty()) return Err(EINVAL, "cannot remove key '{}' of journal '{}' guarded by an empty value", key, object);
  auto io = Io();
  if (!io) return Unexpected(io.error());
  WriteOp op;
  int cmp = 0;
  AddGuard(op.get(), key, LIBRADOS_CMPXATTR_OP_EQ, expected, &cmp);
  const char* keys[] = {key.c_str()};
  size_t key_lens[] = {key.size()};
  rados_write_op_omap_rm_keys2(op.get(), keys, key_lens, 1);
  int r = rados_write_op_operate2(op.get(), *io, object.c_str(), nullptr, 0);
  if (r == -ENOENT) return false;  // no journal object: nothing to remove
  if (r == -ECANCELED) {
    // A missing key compares as "" and fails the guard too.
    auto held = JournalGet(object, key);
    if (!held) return Unexpected(held.error());
    if (!*held) return false;
    return Err(ECANCELED, "key '{}' of journal '{}' in {} changed meanwhile: left as it is", key, object, PoolName());
  }
  if (r < 0) return Err(-r, "cannot remove key '{}' of journal '{}' in {}: {}", key, object, PoolName(), Why(r));
  return true;
}

Result<std::vector<std::pair<std::string, std::string>>> LibrbdSession::JournalList(const std::string& object,
                                                                                    const std::string& prefix,
                                                                                    const std::string& after,
                                                                                    size_t max) {
  auto io = Io();
  if (!io) return Unexpected(io.error());
  std::vector<std::pair<std::string, std::string>> out;
  std::string start = after;
  for (;;) {
    uint64_t want = kListBatch;
    if (max != 0) want = std::min<uint64_t>(want, max - out.size());
    ReadOp op;
    OmapIter it;
    unsigned char more = 0;
    int prval = 0;
    rados_read_op_omap_get_vals2(op.get(), start.c_str(), prefix.c_str(), want, it.out(), &more, &prval);
    int r = rados_read_op_operate(op.get(), *io, object.c_str(), 0);
    if (r == -ENOENT) return out;  // no journal object: an empty journal
    if (r == 0 && prval < 0) r = prval;
    if (r < 0) return Err(-r, "cannot list journal '{}' in {}: {}", object, PoolName(), Why(r));
    std::string k, v;
    size_t got = 0;
    while (it.Next(&k, &v, &r)) {
      start = k;
      out.emplace_back(std::move(k), std::move(v));
      ++got;
    }
    if (r < 0) return Err(-r, "cannot list journal '{}' in {}: {}", object, PoolName(), Why(r));
    if (!more || got == 0 || (max != 0 && out.size() >= max)) return out;
  }
}

}  // namespace rbdnbd::csi
