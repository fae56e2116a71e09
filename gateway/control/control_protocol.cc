#include "control/control_protocol.h"

#include <cerrno>

namespace rbdnbd {

api::MapRequest ToWire(const MapRequest& r) {
  api::MapRequest w;
  w.spec = r.spec;
  w.device_type = DeviceTypeName(r.type);
  w.device = r.device.index;
  w.queue_depth = r.ublk_queue_depth;
  w.max_io_bytes = r.ublk_max_io_bytes;
  w.connections = r.device.connections;
  w.io_timeout_s = r.device.io_timeout_s;
  w.reattach_timeout_s = r.device.reattach_timeout_s;
  w.cookie = r.device.cookie;
  w.read_only = r.image.read_only;
  w.exclusive = r.image.exclusive;
  w.notrim = r.image.notrim;
  w.encryption = EncryptionName(r.image.encryption);
  w.passphrase_file = r.passphrase_file;
  w.passphrase = r.image.passphrase;
  w.client_name = r.cluster.client_name;
  w.conf = r.cluster.conf_path;
  w.mon_host = r.cluster.mon_host;
  w.keyring = r.cluster.keyring_path;
  w.keyfile = r.keyfile_path;
  w.connect_timeout_s = static_cast<uint32_t>(r.cluster.connect_timeout.count());
  w.key = r.cluster.key;
  return w;
}

Result<MapRequest> FromWire(api::MapRequest w) {
  MapRequest r;
  r.spec = std::move(w.spec);
  auto type = ParseDeviceType(w.device_type);
  if (!type) return Unexpected(type.error());
  r.type = *type;
  r.device.index = w.device;
  r.ublk_queue_depth = w.queue_depth;
  r.ublk_max_io_bytes = w.max_io_bytes;
  r.device.connections = w.connections;
  r.device.io_timeout_s = w.io_timeout_s;
  r.device.reattach_timeout_s = w.reattach_timeout_s;
  r.device.cookie = std::move(w.cookie);
  r.image.read_only = w.read_only;
  r.image.exclusive = w.exclusive;
  r.image.notrim = w.notrim;
  auto format = ParseEncryptionFormat(w.encryption);
  if (!format) return Unexpected(format.error());
  r.image.encryption = *format;
  r.image.passphrase = std::move(w.passphrase);
  r.passphrase_file = std::move(w.passphrase_file);
  // The decoder applied SetClientName()'s rule; the CLI's names come from it.
  r.cluster.client_name = std::move(w.client_name);
  r.cluster.conf_path = std::move(w.conf);
  r.cluster.mon_host = std::move(w.mon_host);
  r.cluster.keyring_path = std::move(w.keyring);
  r.cluster.key = std::move(w.key);
  r.cluster.connect_timeout = std::chrono::seconds(w.connect_timeout_s);
  r.cluster.read_ceph_args = false;  // the daemon's environment is not the caller's
  r.keyfile_path = std::move(w.keyfile);
  return r;
}

Result<DeviceRecord> RecordForAttach(const api::AttachRequest& attach) {
  auto req = FromWire(attach.map);
  if (!req) return Unexpected(req.error());
  auto spec = ParseImageSpec(req->spec);
  if (!spec) return Unexpected(spec.error());
  return RecordForMap(*req, *spec);
}

api::DeviceEntry ToWire(const MappedInfo& m) {
  const DeviceRecord& r = m.record;
  api::DeviceEntry d;
  d.device = m.device;
  d.type = DeviceTypeName(r.type);
  d.index = r.index;
  d.spec = r.spec;
  d.cookie = r.cookie;
  d.connections = r.connections;
  d.live_connections = m.live_connections;
  d.queue_depth = r.queue_depth;  // 0 for nbd
  d.max_io_bytes = r.max_io_bytes;
  d.size = m.size;
  d.image_size = m.image_size;
  d.read_only = r.read_only;
  d.exclusive = r.exclusive;
  d.encryption = r.encryption;
  d.io_timeout_s = r.io_timeout_s;
  d.reattach_timeout_s = r.reattach_timeout_s;
  d.client_name = r.client_name;
  d.kernel_connected = m.kernel_connected;
  d.state = m.state;
  d.last_error = m.last_error;
  d.last_error_unix = m.last_error_unix;
  d.reattach_attempts = m.reattach_attempts;
  d.health = m.health;
  return d;
}

}  // namespace rbdnbd
