// Monitor addresses and a probe of them, to tell three failures apart when
// rados_connect() times out.
//
// Why: rados_connect() says ETIMEDOUT for all of these:
//   * nothing accepts on the monitor addresses (down, wrong address, firewall);
//   * the monitors accept TCP but send nothing: the process is hung, stopped
//     or overloaded (the kernel completes the TCP handshake from the listen
//     backlog even for a SIGSTOPped monitor);
//   * the monitors answer but keep refusing us: with a bare IP:PORT address
//     (other than :3300) librados speaks Ceph's v1 protocol, whose monitor
//     client retries a refused key until client_mount_timeout runs out.
// A Ceph monitor writes its banner ("ceph v027" for v1, "ceph v2\n" for v2) as
// soon as it accepts, before it reads anything, so connecting and waiting
// briefly for that banner tells the three apart without speaking the protocol.
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

enum class MonitorReach {
  kNothingAccepts,  // no endpoint accepted a TCP connection
  kNoBanner,        // one accepted, none sent a Ceph banner: hung or overloaded
  kAnswers,         // one sent its banner: the monitor is alive and talking
};

// The best of the endpoints (kAnswers > kNoBanner > kNothingAccepts), probed
// in order until one answers or `timeout` has passed.
MonitorReach ProbeMonitors(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout);

const char* MonitorReachName(MonitorReach reach);  // for logs and tests

}  // namespace rbdnbd
