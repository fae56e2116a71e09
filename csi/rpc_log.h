// What the CSI services (Node, Controller) share at the gRPC boundary: one
// log line per RPC, and the small conversions of request fields.
//
// Contract: any thread; an RpcLog belongs to the RPC (the gRPC thread) that
// made it. The subject of a log line must hold no secret: names, ids and
// paths only.
#pragma once

#include <chrono>
#include <string>

#include <google/protobuf/map.h>
#include <grpcpp/support/status.h>

#include "csi/volume_params.h"

namespace rbdnbd::csi {

// Logs one RPC's outcome and duration: "RPC SUBJECT: OK (N ms)" at info, or
// "RPC SUBJECT: CODE: message (N ms)" at warn.
class RpcLog {
 public:
  RpcLog(const char* rpc, std::string subject);
  // The node's RPCs: the subject is "VOLUME_ID PATH".
  RpcLog(const char* rpc, const std::string& volume_id, const std::string& path)
      : RpcLog(rpc, volume_id + " " + path) {}

  // Logs `status` and returns it.
  grpc::Status Done(grpc::Status status) const;

 private:
  const char* rpc_;
  std::string subject_;
  std::chrono::steady_clock::time_point start_;
};

// INVALID_ARGUMENT "FIELD is required".
grpc::Status MissingField(const char* field);

StringMap ToStringMap(const google::protobuf::Map<std::string, std::string>& m);

}  // namespace rbdnbd::csi
