#include "netlink/nbd_netlink.h"

#include <linux/nbd-netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <cerrno>
#include <cstring>

namespace rbdnbd {
namespace {

// The outcome of one request: the kernel's errno (from NLMSG_ERROR) and
// whatever the VALID callback parsed.
struct Exchange {
  bool done = false;
  int error = 0;  // negative errno from the kernel
  std::optional<uint32_t> index;
  std::vector<NbdDeviceStatus> devices;
};

int OnError(sockaddr_nl*, nlmsgerr* err, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  x->error = err->error;
  x->done = true;
  return NL_STOP;
}

int OnAck(nl_msg*, void* arg) {
  static_cast<Exchange*>(arg)->done = true;
  return NL_STOP;
}

int OnFinish(nl_msg*, void* arg) {
  static_cast<Exchange*>(arg)->done = true;
  return NL_SKIP;
}

void ParseDeviceList(nlattr* list, std::vector<NbdDeviceStatus>* out) {
  nlattr* item;
  int rem;
  nla_for_each_nested(item, list, rem) {
    if (nla_type(item) != NBD_DEVICE_ITEM) continue;
    nlattr* dev[NBD_DEVICE_ATTR_MAX + 1] = {};
    if (nla_parse_nested(dev, NBD_DEVICE_ATTR_MAX, item, nullptr) < 0) continue;
    if (dev[NBD_DEVICE_INDEX] == nullptr) continue;
    NbdDeviceStatus s;
    s.index = nla_get_u32(dev[NBD_DEVICE_INDEX]);
    s.connected = dev[NBD_DEVICE_CONNECTED] != nullptr && nla_get_u8(dev[NBD_DEVICE_CONNECTED]) != 0;
    out->push_back(s);
  }
}

int OnValid(nl_msg* msg, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  nlattr* attrs[NBD_ATTR_MAX + 1] = {};
  if (genlmsg_parse(nlmsg_hdr(msg), 0, attrs, NBD_ATTR_MAX, nullptr) < 0) return NL_SKIP;
  if (attrs[NBD_ATTR_INDEX] != nullptr) x->index = nla_get_u32(attrs[NBD_ATTR_INDEX]);
  if (attrs[NBD_ATTR_DEVICE_LIST] != nullptr) ParseDeviceList(attrs[NBD_ATTR_DEVICE_LIST], &x->devices);
  return NL_OK;
}

const char* CommandName(uint8_t cmd) {
  switch (cmd) {
    case NBD_CMD_CONNECT: return "CONNECT";
    case NBD_CMD_DISCONNECT: return "DISCONNECT";
    case NBD_CMD_RECONFIGURE: return "RECONFIGURE";
    case NBD_CMD_STATUS: return "STATUS";
    default: return "?";
  }
}

// Sends `msg` (consumed) and waits for the reply and ack.
Result<Exchange> Transact(nl_sock* sock, nl_msg* msg, uint8_t cmd, const std::string& what) {
  Exchange x;
  nl_cb* cb = nl_cb_alloc(NL_CB_DEFAULT);
  if (cb == nullptr) {
    nlmsg_free(msg);
    return Err(ENOMEM, "nbd netlink {}: out of memory", CommandName(cmd));
  }
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, OnValid, &x);
  nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, OnAck, &x);
  nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, OnFinish, &x);
  nl_cb_err(cb, NL_CB_CUSTOM, OnError, &x);
  int r = nl_send_auto(sock, msg);
  nlmsg_free(msg);
  while (r >= 0 && !x.done) r = nl_recvmsgs(sock, cb);
  nl_cb_put(cb);
  if (x.error < 0) {
    return Err(-x.error, "nbd netlink {}{}: {}", CommandName(cmd), what, strerror(-x.error));
  }
  if (r < 0) return Err(EIO, "nbd netlink {}{}: {}", CommandName(cmd), what, nl_geterror(r));
  return x;
}

nl_msg* NewMessage(int family, uint8_t cmd) {
  nl_msg* msg = nlmsg_alloc();
  if (msg == nullptr) return nullptr;
  if (genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, cmd, 0) == nullptr) {
    nlmsg_free(msg);
    return nullptr;
  }
  return msg;
}

int PutSockets(nl_msg* msg, const std::vector<int>& fds) {
  if (fds.empty()) return 0;
  nlattr* socks = nla_nest_start(msg, NBD_ATTR_SOCKETS);
  if (socks == nullptr) return -NLE_NOMEM;
  for (int fd : fds) {
    nlattr* item = nla_nest_start(msg, NBD_SOCK_ITEM);
    if (item == nullptr) return -NLE_NOMEM;
    if (int r = nla_put_u32(msg, NBD_SOCK_FD, static_cast<uint32_t>(fd)); r < 0) return r;
    nla_nest_end(msg, item);
  }
  nla_nest_end(msg, socks);
  return 0;
}

}  // namespace

Result<std::unique_ptr<NbdNetlink>> NbdNetlink::Open() {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) return Err(ENOMEM, "cannot allocate a netlink socket");
  if (int r = genl_connect(sock); r < 0) {
    nl_socket_free(sock);
    return Err(EIO, "cannot connect to generic netlink: {}", nl_geterror(r));
  }
  int family = genl_ctrl_resolve(sock, NBD_GENL_FAMILY_NAME);
  if (family < 0) {
    nl_socket_free(sock);
    return Err(ENOENT, "the kernel has no '{}' netlink family (is the nbd module loaded?)", NBD_GENL_FAMILY_NAME);
  }
  return std::unique_ptr<NbdNetlink>(new NbdNetlink(sock, family));
}

NbdNetlink::~NbdNetlink() { nl_socket_free(sock_); }

Result<uint32_t> NbdNetlink::Connect(const NbdConnectParams& p) {
  std::lock_guard lock(mu_);  // one request and its reply at a time on sock_
  if (p.sockets.empty()) return Err(EINVAL, "nbd netlink CONNECT needs at least one socket");
  nl_msg* msg = NewMessage(family_, NBD_CMD_CONNECT);
  if (msg == nullptr) return Err(ENOMEM, "nbd netlink CONNECT: out of memory");
  int r = 0;
  if (p.index) r |= nla_put_u32(msg, NBD_ATTR_INDEX, *p.index);
  r |= nla_put_u64(msg, NBD_ATTR_SIZE_BYTES, p.size_bytes);
  r |= nla_put_u64(msg, NBD_ATTR_BLOCK_SIZE_BYTES, p.block_size);
  r |= nla_put_u64(msg, NBD_ATTR_SERVER_FLAGS, p.server_flags);
  r |= nla_put_u64(msg, NBD_ATTR_TIMEOUT, p.timeout_s);
  if (p.client_flags != 0) r |= nla_put_u64(msg, NBD_ATTR_CLIENT_FLAGS, p.client_flags);
  if (p.dead_conn_timeout_s != 0) r |= nla_put_u64(msg, NBD_ATTR_DEAD_CONN_TIMEOUT, p.dead_conn_timeout_s);
  if (!p.backend_id.empty()) r |= nla_put_string(msg, NBD_ATTR_BACKEND_IDENTIFIER, p.backend_id.c_str());
  r |= PutSockets(msg, p.sockets);
  if (r < 0) {
    nlmsg_free(msg);
    return Err(ENOMEM, "nbd netlink CONNECT: message too large");
  }
  std::string what = p.index ? fmt::format(" /dev/nbd{}", *p.index) : std::string();
  auto x = Transact(sock_, msg, NBD_CMD_CONNECT, what);
  if (!x) return Unexpected(x.error());
  if (!x->index) {
    if (p.index) return *p.index;
    return Err(EPROTO, "nbd netlink CONNECT: the kernel did not say which device it used");
  }
  return *x->index;
}

Result<void> NbdNetlink::Disconnect(uint32_t index) {
  std::lock_guard lock(mu_);  // one request and its reply at a time on sock_
  nl_msg* msg = NewMessage(family_, NBD_CMD_DISCONNECT);
  if (msg == nullptr || nla_put_u32(msg, NBD_ATTR_INDEX, index) < 0) {
    if (msg) nlmsg_free(msg);
    return Err(ENOMEM, "nbd netlink DISCONNECT: out of memory");
  }
  auto x = Transact(sock_, msg, NBD_CMD_DISCONNECT, fmt::format(" /dev/nbd{}", index));
  if (!x) return Unexpected(x.error());
  return {};
}

Result<void> NbdNetlink::Reconfigure(const NbdReconfigureParams& p) {
  std::lock_guard lock(mu_);  // one request and its reply at a time on sock_
  nl_msg* msg = NewMessage(family_, NBD_CMD_RECONFIGURE);
  if (msg == nullptr) return Err(ENOMEM, "nbd netlink RECONFIGURE: out of memory");
  int r = nla_put_u32(msg, NBD_ATTR_INDEX, p.index);
  if (p.size_bytes) r |= nla_put_u64(msg, NBD_ATTR_SIZE_BYTES, *p.size_bytes);
  if (p.timeout_s) r |= nla_put_u64(msg, NBD_ATTR_TIMEOUT, *p.timeout_s);
  if (p.dead_conn_timeout_s) r |= nla_put_u64(msg, NBD_ATTR_DEAD_CONN_TIMEOUT, *p.dead_conn_timeout_s);
  if (p.client_flags) r |= nla_put_u64(msg, NBD_ATTR_CLIENT_FLAGS, *p.client_flags);
  if (!p.backend_id.empty()) r |= nla_put_string(msg, NBD_ATTR_BACKEND_IDENTIFIER, p.backend_id.c_str());
  r |= PutSockets(msg, p.sockets);
  if (r < 0) {
    nlmsg_free(msg);
    return Err(ENOMEM, "nbd netlink RECONFIGURE: message too large");
  }
  auto x = Transact(sock_, msg, NBD_CMD_RECONFIGURE, fmt::format(" /dev/nbd{}", p.index));
  if (!x) return Unexpected(x.error());
  return {};
}

Result<std::vector<NbdDeviceStatus>> NbdNetlink::Status(std::optional<uint32_t> index) {
  std::lock_guard lock(mu_);  // one request and its reply at a time on sock_
  nl_msg* msg = NewMessage(family_, NBD_CMD_STATUS);
  if (msg == nullptr) return Err(ENOMEM, "nbd netlink STATUS: out of memory");
  if (index && nla_put_u32(msg, NBD_ATTR_INDEX, *index) < 0) {
    nlmsg_free(msg);
    return Err(ENOMEM, "nbd netlink STATUS: out of memory");
  }
  auto x = Transact(sock_, msg, NBD_CMD_STATUS, "");
  if (!x) return Unexpected(x.error());
  return std::move(x->devices);
}

// ---------------------------------------------------------------- LINK_DEAD

namespace {
int OnLinkDead(nl_msg* msg, void* arg) {
  auto* dead = static_cast<std::vector<uint32_t>*>(arg);
  genlmsghdr* gh = static_cast<genlmsghdr*>(nlmsg_data(nlmsg_hdr(msg)));
  if (gh->cmd != NBD_CMD_LINK_DEAD) return NL_SKIP;
  nlattr* attrs[NBD_ATTR_MAX + 1] = {};
  if (genlmsg_parse(nlmsg_hdr(msg), 0, attrs, NBD_ATTR_MAX, nullptr) < 0) return NL_SKIP;
  if (attrs[NBD_ATTR_INDEX] != nullptr) dead->push_back(nla_get_u32(attrs[NBD_ATTR_INDEX]));
  return NL_OK;
}
}  // namespace

Result<std::unique_ptr<NbdLinkWatcher>> NbdLinkWatcher::Open() {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) return Err(ENOMEM, "cannot allocate a netlink socket");
  nl_socket_disable_seq_check(sock);
  if (int r = genl_connect(sock); r < 0) {
    nl_socket_free(sock);
    return Err(EIO, "cannot connect to generic netlink: {}", nl_geterror(r));
  }
  int group = genl_ctrl_resolve_grp(sock, NBD_GENL_FAMILY_NAME, NBD_GENL_MCAST_GROUP_NAME);
  if (group < 0 || nl_socket_add_membership(sock, group) < 0) {
    nl_socket_free(sock);
    return Err(ENOENT, "cannot join the nbd netlink multicast group (is the nbd module loaded?)");
  }
  nl_socket_set_nonblocking(sock);
  return std::unique_ptr<NbdLinkWatcher>(new NbdLinkWatcher(sock));
}

NbdLinkWatcher::~NbdLinkWatcher() { nl_socket_free(sock_); }

int NbdLinkWatcher::fd() const { return nl_socket_get_fd(sock_); }

void NbdLinkWatcher::Drain(std::vector<uint32_t>* dead) {
  nl_cb* cb = nl_cb_alloc(NL_CB_DEFAULT);
  if (cb == nullptr) return;
  nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, OnLinkDead, dead);
  while (nl_recvmsgs(sock_, cb) > 0) {
  }
  nl_cb_put(cb);
}

}  // namespace rbdnbd
