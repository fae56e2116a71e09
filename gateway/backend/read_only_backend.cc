#include "backend/read_only_backend.h"

#include <cassert>
#include <cerrno>

namespace rbdnbd {

std::shared_ptr<Backend> ReadOnlyBackend::Wrap(std::shared_ptr<Backend> inner) {
  assert(inner != nullptr);
  return std::shared_ptr<Backend>(new ReadOnlyBackend(std::move(inner)));
}

BackendCaps ReadOnlyBackend::Capabilities() const {
  BackendCaps caps = inner_->Capabilities();
  caps.read_only = true;
  caps.can_trim = false;
  caps.can_write_zeroes = false;
  caps.can_fua = false;
  return caps;
}

void ReadOnlyBackend::Submit(EventLoop& loop, IoRequest& io) {
  switch (io.type) {
    case IoType::kRead:
    case IoType::kFlush:
    case IoType::kCache:
      inner_->Submit(loop, io);
      return;
    case IoType::kWrite:
    case IoType::kTrim:
    case IoType::kWriteZeroes:
      break;
  }
  io.OnIoDone(-EROFS);
}

std::string ReadOnlyBackend::Describe() const { return inner_->Describe() + " (read-only)"; }

}  // namespace rbdnbd
