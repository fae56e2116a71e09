#include "control/map_request.h"

#include "api/messages.h"
#include "ublk/ublk_params.h"

namespace rbdnbd {

static_assert(api::kMaxUblkQueueDepth == kUblkMaxDepth && api::kMaxUblkIoBytes == kUblkMaxIoBytes,
              "the API's ublk limits are the driver's");

const char* EncryptionName(EncryptionFormat format) {
  switch (format) {
    case EncryptionFormat::kLuks1: return "luks1";
    case EncryptionFormat::kLuks2: return "luks2";
    default: return "";
  }
}

DeviceRecord RecordForMap(const MapRequest& req, const ImageSpec& spec) {
  DeviceRecord r;
  r.type = req.type;
  if (req.device.index) r.index = *req.device.index;
  r.spec = spec.ToString();
  r.cookie = req.device.cookie;
  r.connections = req.device.connections;
  if (req.type == DeviceType::kUblk) {
    r.queue_depth = req.ublk_queue_depth != 0 ? req.ublk_queue_depth : kUblkDefaultDepth;
    r.max_io_bytes = req.ublk_max_io_bytes != 0 ? req.ublk_max_io_bytes : kUblkDefaultMaxIoBytes;
  }
  r.io_timeout_s = req.device.io_timeout_s;
  r.reattach_timeout_s = req.device.reattach_timeout_s;
  r.connect_timeout_s = static_cast<uint64_t>(req.cluster.connect_timeout.count());
  r.read_only = req.image.read_only || spec.is_snapshot();
  r.exclusive = req.image.exclusive;
  r.notrim = req.image.notrim;
  r.encryption = EncryptionName(req.image.encryption);
  r.passphrase_file = req.passphrase_file;
  r.client_name = req.cluster.client_name;
  r.conf_path = req.cluster.conf_path;
  r.mon_host = req.cluster.mon_host;
  r.keyring_path = req.cluster.keyring_path;
  r.keyfile_path = req.keyfile_path;
  r.key_in_memory = !req.cluster.key.empty() && req.keyfile_path.empty();
  r.passphrase_in_memory = !req.image.passphrase.empty() && req.passphrase_file.empty();
  return r;
}

Result<MapRequest> MapRequestForRecord(const DeviceRecord& r) {
  MapRequest req;
  req.spec = r.spec;
  req.type = r.type;
  req.device.index = r.index;
  req.device.cookie = r.cookie;
  req.device.connections = r.connections;
  req.ublk_queue_depth = r.queue_depth;
  req.ublk_max_io_bytes = r.max_io_bytes;
  req.device.io_timeout_s = r.io_timeout_s;
  req.device.reattach_timeout_s = r.reattach_timeout_s;
  if (r.connect_timeout_s > 0) req.cluster.connect_timeout = std::chrono::seconds(r.connect_timeout_s);
  req.image.read_only = r.read_only;
  req.image.exclusive = r.exclusive;
  req.image.notrim = r.notrim;
  auto enc = ParseEncryptionFormat(r.encryption);
  if (!enc) return Unexpected(enc.error());
  req.image.encryption = *enc;
  req.passphrase_file = r.passphrase_file;
  req.cluster.client_name = r.client_name.empty() ? "client.admin" : r.client_name;
  req.cluster.conf_path = r.conf_path;
  req.cluster.mon_host = r.mon_host;
  req.cluster.keyring_path = r.keyring_path;
  req.cluster.read_ceph_args = false;  // the daemon's environment is not the mapper's
  req.keyfile_path = r.keyfile_path;
  return req;
}

}  // namespace rbdnbd
