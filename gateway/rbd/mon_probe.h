// Monitor addresses and a plain TCP probe of them, to tell "unreachable"
// from "reachable but refusing us" when rados_connect() times out.
//
// Why: with a bare IP:PORT monitor address (other than :3300) librados speaks
// Ceph's v1 protocol, whose monitor client retries a refused key until
// client_mount_timeout runs out. The error is then ETIMEDOUT whether the
// monitors are down or the key is wrong; a TCP connect tells the two apart.
//
// Contract: pure parsing, and a blocking probe bounded by `timeout` in all
// (every address is tried at most once, in order, while time is left). Any
// thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace rbdnbd {

// "host:port" endpoints named by a mon_host value, in order, without
// duplicates. Accepts what ceph.conf does: lists separated by ',', ';' or
// spaces; "[v2:IP:PORT,v1:IP:PORT]" vectors; "v1:"/"v2:" prefixes; "/nonce"
// suffixes; IPv6 as "[::1]:3300"; and a bare IP (both default ports, 3300 and
// 6789). DNS names are kept as they are.
std::vector<std::string> MonitorEndpoints(std::string_view mon_host);

// True if an endpoint accepts a TCP connection before `timeout` has passed.
bool AnyEndpointAcceptsTcp(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout);

}  // namespace rbdnbd
