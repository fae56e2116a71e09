// ReadOnlyBackend: makes any backend read-only (the `read-only` export key).
//
// Contract
// --------
// * Capabilities() = the inner backend's, with read_only = true and the
//   write-only features (trim, write_zeroes, fua) cleared, so a frontend never
//   advertises them. flush and cache stay, as nbdkit does for -r.
// * Submit(): kRead, kFlush and kCache go to the inner backend unchanged, on
//   the same loop, and complete however it completes them. kWrite, kTrim and
//   kWriteZeroes complete inline with -EROFS: a frontend rejects them first,
//   this is the defence behind it.
// * Holds a shared_ptr to the inner backend. Thread-safe like the inner one.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"

namespace rbdnbd {

class ReadOnlyBackend final : public Backend {
 public:
  // `inner` must not be null.
  static std::shared_ptr<Backend> Wrap(std::shared_ptr<Backend> inner);

  BackendCaps Capabilities() const override;
  void Submit(EventLoop& loop, IoRequest& io) override;
  std::string Describe() const override;

 private:
  explicit ReadOnlyBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}

  const std::shared_ptr<Backend> inner_;
};

}  // namespace rbdnbd
