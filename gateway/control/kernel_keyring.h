// Kernel keyring: parks a key that was handed to the daemon in memory (never
// on disk) in root's user keyring, so that a restarted daemon can reattach the
// device. The kernel holds it in memory only; it is gone after a reboot, as
// the devices are. Control thread.
#pragma once

#include <string>

#include "common/result.h"
#include "rbd/secret.h"

namespace rbdnbd {

Result<void> StoreKernelKey(const std::string& description, const Secret& key);
Result<Secret> LoadKernelKey(const std::string& description);
void ForgetKernelKey(const std::string& description);

}  // namespace rbdnbd
