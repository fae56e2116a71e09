#!/bin/bash
# LUKS1 and LUKS2 images (`rbd encryption format IMG luksN PASSFILE`) served with
# --encryption-format/--encryption-passphrase-file:
#   - the export advertises block_size_minimum 4096 and the size minus the LUKS header;
#   - a plaintext written through NBD reads back (sha256), also from a new server;
#   - served without encryption options, the raw image starts with the LUKS magic and
#     contains none of the plaintext (every 4 KiB block carried a marker string);
#   - a wrong passphrase: one error line naming the passphrase, exit code 2, nothing left;
#   - the passphrase in no server log, one of them at --log-level trace as JSON lines.
# Formats to test: RBD_LUKS_FORMATS (default "luks1 luks2"); each format takes ~15 s of
# key derivation in `rbd encryption format` on this machine kind.
. "$(dirname "$0")/lib_rbd.sh"
require_cmd nbdcopy nbdinfo
rbd_setup
make_scratch
MIB=64
# unlocking runs the key derivation (PBKDF2 / Argon2): seconds, more on a loaded host
[ "$T_START" -ge 90 ] || T_START=90

( umask 077; printf 'it-secret-%s-%s' "$$" "$RANDOM" >"$TMPD/pass"; printf 'not-the-passphrase' >"$TMPD/wrong" )

for F in ${RBD_LUKS_FORMATS:-luks1 luks2}; do
  IMG=rbd/$(unique_image_name "$F")
  rbd_create "$IMG" "${MIB}M"
  t0=$SECONDS
  t 180 rbd encryption format "$IMG" "$F" "$TMPD/pass" || fail "$F: rbd encryption format failed"
  log "$F: formatted in $((SECONDS - t0)) s"
  ENC=(--encryption-format "$F" --encryption-passphrase-file "$TMPD/pass")

  start_rbd_server --rbd "$IMG" "${ENC[@]}"
  U=$(rbd_uri "$IMG")
  t 30 nbdinfo --json "$U" >"$TMPD/info.json" || fail "$F: nbdinfo failed"
  SIZE=$(/usr/bin/python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
if e["block_size_minimum"] != 4096:
    sys.exit("block_size_minimum %s, expected 4096" % e["block_size_minimum"])
s = e["export-size"]
if not (0 < s < int(sys.argv[2]) and s % 4096 == 0):
    sys.exit("export size %d: expected below the image size (LUKS header) and 4 KiB aligned" % s)
print(s)' "$TMPD/info.json" $((MIB << 20))) || fail "$F: nbdinfo: $(cat "$TMPD/info.json")"
  log "$F: export size $((SIZE >> 20)) MiB of $MIB, block_size_minimum 4096"

  # plaintext: each 4 KiB block = a marker + random bytes
  MARK="RBDNBD-PLAINTEXT-$F-$$"
  /usr/bin/python3 -c '
import os, sys
mark, n, out = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3]
with open(out, "wb") as f:
    for _ in range(n // 4096):
        f.write(mark + os.urandom(4096 - len(mark)))' "$MARK" "$SIZE" "$SCRATCH/plain" || fail "making the plaintext failed"
  P=$(sha256 "$SCRATCH/plain")
  t 300 nbdcopy --flush "$SCRATCH/plain" "$U" || fail "$F: writing through the encrypted export failed"
  t 300 nbdcopy "$U" "$SCRATCH/back" || fail "$F: reading it back failed"
  [ "$(sha256 "$SCRATCH/back")" = "$P" ] || fail "$F: read-back differs from the plaintext"
  stop_rbd_server

  # a new server (the passphrase unlocks it again): same plaintext; it logs everything
  # (trace, as JSON lines), and the passphrase must be in none of the logs (checked below)
  start_rbd_server --rbd "$IMG" "${ENC[@]}" --log-level trace --log-format json
  U=$(rbd_uri "$IMG")
  t 300 nbdcopy "$U" "$SCRATCH/back" || fail "$F: reading through a new server failed"
  [ "$(sha256 "$SCRATCH/back")" = "$P" ] || fail "$F: a new server reads something else than was written"
  stop_rbd_server

  # without encryption options: ciphertext only
  start_rbd_server --rbd "$IMG"
  U=$(rbd_uri "$IMG")
  [ "$(nbdinfo --size "$U")" = $((MIB << 20)) ] || fail "$F: the raw export is not the whole image"
  t 300 nbdcopy "$U" "$SCRATCH/raw" || fail "$F: reading the raw image failed"
  stop_rbd_server
  [ "$(head -c 6 "$SCRATCH/raw" | od -An -tx1 | tr -d ' \n')" = 4c554b53babe ] || fail "$F: the raw image does not start with the LUKS magic"
  hits=$(grep -c -aF -- "$MARK" "$SCRATCH/raw" || true)
  [ "$hits" = 0 ] || fail "$F: the raw image holds the plaintext ($hits blocks with the marker)"
  log "$F: round trip ok ($P), raw image holds no plaintext"

  expect_start_failure "$F: wrong passphrase" "passphrase" 60 --rbd "$IMG" \
    --encryption-format "$F" --encryption-passphrase-file "$TMPD/wrong" || fail "$F: wrong passphrase not refused properly"
  rm -f "$SCRATCH"/*
done
PASS_TEXT=$(cat "$TMPD/pass")
for f in "$TMPD"/*.log "$TMPD"/*.out; do
  [ -f "$f" ] || continue
  grep -qF -- "$PASS_TEXT" "$f" && fail "the passphrase is in the server log $f"
done
pass "${RBD_LUKS_FORMATS:-luks1 luks2}: round trip, 4096-byte blocks, ciphertext at rest, wrong passphrase refused, the passphrase in no log (trace included)"
