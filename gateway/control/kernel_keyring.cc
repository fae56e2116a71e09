#include "control/kernel_keyring.h"

#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace rbdnbd {
namespace {

long FindKey(const std::string& description) {
  return syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", description.c_str(), 0);
}

}  // namespace

Result<void> StoreKernelKey(const std::string& description, const Secret& key) {
  const std::string& k = key.reveal();
  long id = syscall(SYS_add_key, "user", description.c_str(), k.data(), k.size(), KEY_SPEC_USER_KEYRING);
  if (id < 0) return Err(errno, "cannot keep the key in the kernel keyring: {}", strerror(errno));
  return {};
}

Result<Secret> LoadKernelKey(const std::string& description) {
  long id = FindKey(description);
  if (id < 0) return Err(errno, "no key '{}' in the kernel keyring: {}", description, strerror(errno));
  std::vector<char> buf(4096);
  long n = syscall(SYS_keyctl, KEYCTL_READ, id, buf.data(), buf.size());
  if (n < 0 || static_cast<size_t>(n) > buf.size()) {
    explicit_bzero(buf.data(), buf.size());
    return Err(EIO, "cannot read key '{}' from the kernel keyring", description);
  }
  Secret s(std::string(buf.data(), static_cast<size_t>(n)));
  explicit_bzero(buf.data(), buf.size());
  return s;
}

void ForgetKernelKey(const std::string& description) {
  long id = FindKey(description);
  if (id >= 0) syscall(SYS_keyctl, KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING);
}

}  // namespace rbdnbd
