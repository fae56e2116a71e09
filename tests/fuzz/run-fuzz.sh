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

# fuzz_one TARGET : one target's run, in a subshell; its report goes to $work/TARGET/report.
# It exits 0 only when the target ran clean. The targets run at once, a core each when
# there are two: each still gets SECONDS of fuzzing, the step takes half the time.
fuzz_one() {
  local target=$1 bin fail=0 out
  out=$work/$target
  mkdir -p "$out/corpus" "$out/artifacts"
  exec >"$out/report" 2>&1
  bin=$(find "$build_dir" -type f -name "$target" -perm -u+x 2>/dev/null | head -n1) || bin=
  if [[ -z $bin ]]; then
    echo "FAIL: $target not found under $build_dir (built with -DRBDNBD_FUZZ=ON?)"
    exit 1
  fi
  local extra=()
  [[ $target == fuzz_handshake ]] && extra+=("-dict=$here/handshake.dict")
  echo "== $target: ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/" "${extra[@]}" \
      "$out/corpus" "$here/corpus/$target" >"$out/log" 2>&1; then
    echo "FAIL: $target exited non-zero"
    fail=1
  fi
  if compgen -G "$out/artifacts/*" >/dev/null; then
    echo "FAIL: $target left artifacts:" "$out/artifacts/"*
    fail=1
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb)' "$out/log" || true
  grep -E 'ERROR: (libFuzzer|AddressSanitizer)|runtime error' "$out/log" && fail=1
  exit "$fail"
}

targets=(fuzz_request fuzz_handshake)
pids=()
for target in "${targets[@]}"; do
  (fuzz_one "$target") &
  pids+=($!)
done
for i in "${!targets[@]}"; do
  rc=0
  wait "${pids[i]}" || rc=$?
  cat "${work}/${targets[i]}/report" 2>/dev/null || echo "FAIL: ${targets[i]} left no report"
  [[ $rc -eq 0 ]] || { echo "FAIL: ${targets[i]} (exit $rc)" >&2; failed=1; }
done

if [[ $failed -ne 0 ]]; then
  echo "fuzzing FAILED; logs and artifacts kept in $work" >&2
  exit 1
fi
echo "fuzzing OK"
