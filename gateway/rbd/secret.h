// Secret: a key or passphrase held only in memory.
//
// Contract: the bytes are wiped when the Secret is destroyed or reassigned;
// a Secret has no formatter and no stream operator, so it cannot reach a log
// by accident; it is never written to disk or passed in argv. Read*() load
// one from a file (the whole content, trailing newline stripped) or from a
// file descriptor such as stdin, without echoing or storing it anywhere else.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace rbdnbd {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret&) = default;
  Secret& operator=(const Secret& o) {
    if (this != &o) { Wipe(); value_ = o.value_; }
    return *this;
  }
  Secret(Secret&& o) noexcept : value_(std::move(o.value_)) { o.Wipe(); }
  Secret& operator=(Secret&& o) noexcept {
    if (this != &o) { Wipe(); value_ = std::move(o.value_); o.Wipe(); }
    return *this;
  }
  ~Secret() { Wipe(); }

  bool empty() const { return value_.empty(); }
  // The only way to the bytes: for handing to librados/librbd.
  const std::string& reveal() const { return value_; }

 private:
  void Wipe();
  std::string value_;
};

// `what` names the secret in error messages ("key file", "passphrase file").
Result<Secret> ReadSecretFile(const std::string& path, std::string_view what);
Result<Secret> ReadSecretFd(int fd, std::string_view what);

}  // namespace rbdnbd
