#!/bin/bash
# Runs each NBD codec fuzz target for SECONDS seconds and fails on any crash.
#
#   tests/fuzz/run-fuzz.sh BUILD_DIR SECONDS
#
# BUILD_DIR was configured with CC=clang CXX=clang++ -DRBDNBD_FUZZ=ON. The
# committed seeds in tests/fuzz/corpus/<target>/ are read, never written:
# new inputs and crash artifacts go to a scratch directory (kept, and printed,
# when something crashes).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
build_dir=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/rbdnbd-fuzz.XXXXXX)
failed=0
cleanup() { [[ $failed -eq 0 ]] && rm -rf "$work"; }
trap cleanup EXIT

for target in fuzz_request fuzz_handshake; do
  bin=$(find "$build_dir" -type f -name "$target" -perm -u+x | head -n1)
  if [[ -z $bin ]]; then
    echo "FAIL: $target not found under $build_dir (built with -DRBDNBD_FUZZ=ON?)" >&2
    failed=1
    continue
  fi
  mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
  extra=()
  [[ $target == fuzz_handshake ]] && extra+=("-dict=$here/handshake.dict")
  echo "== $target: ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$work/$target/artifacts/" "${extra[@]}" \
      "$work/$target/corpus" "$here/corpus/$target" \
      >"$work/$target/log" 2>&1; then
    echo "FAIL: $target exited non-zero" >&2
    failed=1
  fi
  if compgen -G "$work/$target/artifacts/*" >/dev/null; then
    echo "FAIL: $target left artifacts:" "$work/$target/artifacts/"* >&2
    failed=1
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' \
    "$work/$target/log" || true
  grep -E 'ERROR: (libFuzzer|AddressSanitizer)|runtime error' "$work/$target/log" \
    && failed=1 || true
done

if [[ $failed -ne 0 ]]; then
  echo "fuzzing FAILED; logs and artifacts kept in $work" >&2
  exit 1
fi
echo "fuzzing OK"
