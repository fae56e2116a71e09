#!/bin/bash
# The file backend, for each O_DIRECT mode (auto, on, off): nbdcopy 128 MiB of random data
# in and back out, compare checksums; after a clean SIGTERM the backing file itself holds
# exactly the data. The backing file is on the disk under /var/tmp (not tmpfs, which has no
# O_DIRECT).
. "$(dirname "$0")/../lib/common.sh"
require_cmd nbdcopy
MIB=${FILE_MIB:-128}

make_scratch
random_file "$SCRATCH/src" "$MIB"
want=$(sha256 "$SCRATCH/src")
disk=$(mktemp -d /var/tmp/rbdnbd-file.XXXXXX)
on_exit "rm -rf '$disk'"

for mode in auto on off; do
  rm -f "$disk/backing" "$SCRATCH/dst"
  truncate -s "${MIB}M" "$disk/backing"
  start_server --export "name=file,backend=file,path=$disk/backing,direct=$mode"
  t 300 nbdcopy "$SCRATCH/src" "$(uri file)" || fail "direct=$mode: nbdcopy file -> server failed"
  t 300 nbdcopy "$(uri file)" "$SCRATCH/dst" || fail "direct=$mode: nbdcopy server -> file failed"
  got=$(sha256 "$SCRATCH/dst")
  [ "$got" = "$want" ] || fail "direct=$mode: read back $got, sent $want"
  stop_server
  got=$(sha256 "$disk/backing")
  [ "$got" = "$want" ] || fail "direct=$mode: backing file holds $got, sent $want"
  log "direct=$mode ok"
done
pass
