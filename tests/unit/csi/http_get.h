// HttpGet: a blocking HTTP/1.0 GET against 127.0.0.1, for the tests that
// scrape a CSI binary's /metrics endpoint (metrics_server.h). Test code only.
#pragma once

#include <string>

namespace rbdnbd::csi::testing {

struct HttpReply {
  int status = 0;  // 0: no connection or no status line
  std::string headers;
  std::string body;
};

// Connects to 127.0.0.1:`port`, sends GET `path`, reads until the server
// closes (it closes after every answer), with a 5 s timeout on each step.
HttpReply HttpGet(int port, const std::string& path);

}  // namespace rbdnbd::csi::testing
