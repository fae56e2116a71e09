#!/bin/sh
# check_needed.sh BINARY LIB...: fails if BINARY's dynamic section NEEDs any
# library whose name starts with one of LIB (libnl matches libnl-3.so.200 and
# libnl-genl-3.so.200, librados libradosstriper.so.1 too).
# Used on rbd-nbdd-csi, which must run without the gateway's libraries.
set -eu
bin=$1
shift
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
# No NEEDED entry at all: readelf failed, or this is not the dynamic binary
# that was built. Then the check would prove nothing, so it fails.
[ -n "$needed" ] || { echo "no NEEDED entries read from $bin" >&2; exit 1; }
bad=""
for lib in "$@"; do
  for n in $needed; do
    case $n in "$lib"*) bad="$bad $n" ;; esac
  done
done
if [ -n "$bad" ]; then
  echo "$bin needs:$bad" >&2
  exit 1
fi
echo "$bin needs none of: $* (needs: $(echo $needed))"
