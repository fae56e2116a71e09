// ImageSpec: `pool/[namespace/]image[@snap]`, as rbd and rbd-nbd write it.
//
// Contract: ParseImageSpec() is pure. It rejects, with a one-line message
// naming the problem: an empty spec, a missing pool ("image" alone is refused:
// we never guess a default pool), empty components, more than three '/'
// separated parts, an empty snapshot after '@', and control characters.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace rbdnbd {

struct ImageSpec {
  std::string pool;
  std::string ns;     // RADOS namespace; empty for the default one
  std::string image;
  std::string snap;   // empty: the image head

  // Canonical text: pool/[ns/]image[@snap].
  std::string ToString() const;
  bool is_snapshot() const { return !snap.empty(); }
};

Result<ImageSpec> ParseImageSpec(std::string_view text);

}  // namespace rbdnbd
