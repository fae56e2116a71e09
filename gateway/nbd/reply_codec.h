// NBD transmission-phase simple reply codec.
//
// Contract: pure functions on caller-owned buffers of kSimpleReplyHeaderSize
// (16) bytes; no I/O, no allocation, callable from any thread.
//  - EncodeSimpleReply() writes magic, error and cookie big-endian. The error
//    must already be an NBD error (kNbdE*, see ErrnoToNbd()), 0 for success.
//    For a successful READ the caller sends the data right after these 16
//    bytes; for a failed READ it sends no data at all. The caller must keep
//    a reply's bytes together on the stream: the Connection gathers whole
//    replies (header, then payload) into the iovec array of one sendmsg and
//    has one sendmsg in flight at a time, so two replies never interleave.
//  - DecodeSimpleReply() is for tests and clients; it returns false for a bad
//    magic (including the structured reply magic, which we never negotiate).
#pragma once

#include <cstdint>

#include "nbd/protocol.h"

namespace rbdnbd::nbd {

void EncodeSimpleReply(uint8_t* out, uint32_t nbd_error, uint64_t cookie);

struct SimpleReply {
  uint32_t error;
  uint64_t cookie;
};

bool DecodeSimpleReply(const uint8_t* in16, SimpleReply* out);

}  // namespace rbdnbd::nbd
