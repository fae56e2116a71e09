#!/bin/bash
# tests/run-all.sh - THE test command of rbd-nbdd (also what .ci/run runs).
#
#   tests/run-all.sh [--quick] [--no-build] [--server nbdkit] [PATTERN...]
#
# Steps, each counted once in the summary:
#   deploy         tests/deploy/run.sh: deploy/kubernetes manifests + deploy/rbd-nbdd.service, static
#   install-deps   tests/deploy/install_deps_test.sh: install-deps' package decisions (dpkg status, kubectl)
#   shell-lib      tests/lib/test_common.sh: the shell test library itself (no build needed)
#   bench-plots    tests/bench/plot_test.py: the benchmarks' PNG plots from committed fixtures
#   build          cmake+ninja, RelWithDebInfo, as a unity build, into build/
#   unit           ctest in build/
#   build-asan     the unit tests, the daemon and the node plugin with -DRBDNBD_SANITIZE=ON
#                  (ASan+UBSan), as a unity build, into build-asan/
#   unit-asan      ctest in build-asan/
#   build-fuzz     clang, -DRBDNBD_FUZZ=ON, into build-fuzz/ (the fuzz targets only)
#   fuzz           tests/fuzz/run-fuzz.sh build-fuzz 20 (if that script exists)
#   interop/NAME   every tests/interop/*.sh against build/'s rbd-nbdd
#   interop-asan/NAME  the same against build-asan/'s rbd-nbdd (the sanitizers watch the
#                  server under real clients and bad input)
#   dev-cluster    starts one dev Ceph cluster (deploy/dev-cluster.sh) for the run
#   integration/NAME  every tests/integration/*.sh against that cluster (real Ceph)
#                  dev-cluster and integration run in the background from the end of `unit`,
#                  beside the ASan/fuzz/interop track (whose builds run at nice 19); their
#                  lines are printed, and counted, when that track is done
#   e2e            tests/e2e/run-all.sh: every scenario under user-mode Linux (real kernel
#                  nbd driver, krbd, the daemon, a dev cluster inside), in batches that
#                  share one guest and one cluster (tests/e2e/batch.sh), two guests at a time;
#                  the scenarios whose header asks for it also under Debian's 6.12 kernel in
#                  qemu (NAME@6.12; the kernel fetched once with apt-get download, never
#                  installed); with CI=true a 6.12 run that cannot run fails, never skips
#
# Options:
#   --quick          skip the ASan and fuzz builds and everything that needs them
#   --no-build       don't build: use the existing build directories as they are (the
#                    build steps are left out of the count)
#   --server nbdkit  run only the interop scripts, against nbdkit (the reference server the
#                    scripts were validated on), not rbd-nbdd
#   --no-integration, --no-e2e   leave those stages out (developer shortcuts; CI runs all)
#   PATTERN...       run only interop scripts whose name contains one of the patterns
#
# BUILD_PREFIX (default build) moves the build directories: PREFIX, PREFIX-asan,
# PREFIX-fuzz (relative to the source root unless absolute).
#
# A script exiting 77 is a skip. With CI=true a skip counts as a failure: nothing may skip
# silently in CI. The last line is "N passed, N failed" (", N skipped" when any were).
# Step logs are kept in build/test-logs/.
set -uo pipefail

# Root, or a user with sudo: the kernel tests need root (loop devices, UML, namespaces).
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "run-all: needs root, and there is no sudo: run it as root" >&2; exit 2; }
  exec sudo --preserve-env=CI,JOBS,BUILD_PREFIX,E2E_JOBS bash "$0" "$@"
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"   # Debian's python3 (python3-libnbd) first

QUICK=0 BUILD=1 SERVER=rbd-nbdd INTEGRATION=1 E2E=1
PATTERNS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --no-integration) INTEGRATION=0 ;;
    --no-e2e) E2E=0 ;;
    --server) SERVER=$2; shift ;;
    --server=*) SERVER=${1#*=} ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run-all: unknown option $1" >&2; exit 2 ;;
    *) PATTERNS+=("$1") ;;
  esac
  shift
done

JOBS=${JOBS:-$(nproc)}
B=${BUILD_PREFIX:-build}
case "$B" in /*) ;; *) B="$ROOT/$B" ;; esac
LOGS="$B/test-logs"
mkdir -p "$LOGS"
PASSED=0 FAILED=0 SKIPPED=0
RESULTS=() FAIL_LOGS=()
T0=$SECONDS

# step NAME TIMEOUT CMD... : run one step, log to $LOGS/NAME.log, record the result.
step() {
  local name=$1 secs=$2; shift 2
  local log="$LOGS/${name//\//_}.log" t=$SECONDS rc=0
  printf '=== %-34s ' "$name"
  # timeout(1) runs programs, not shell functions: run exported functions through bash.
  if [ "$(type -t "$1")" = function ]; then set -- bash -c '"$@"' _ "$@"; fi
  timeout --kill-after=10 "$secs" "$@" >"$log" 2>&1 </dev/null || rc=$?
  local dt=$((SECONDS - t)) verdict
  if [ "$rc" = 0 ]; then
    verdict=PASS; PASSED=$((PASSED + 1))
  elif [ "$rc" = 77 ] && [ "${CI:-}" != true ]; then
    verdict=SKIP; SKIPPED=$((SKIPPED + 1))
  else
    verdict=FAIL; FAILED=$((FAILED + 1))
    [ "$rc" = 77 ] && verdict="FAIL (skipped, and CI=true)"
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && verdict="FAIL (timeout after ${secs}s)"
  fi
  printf '%s (%ss)\n' "$verdict" "$dt"
  if [ "$verdict" != PASS ]; then
    echo "--- last 60 lines of $log"
    tail -n 60 "$log" | sed 's/^/    /'
    echo "---"
  fi
  RESULTS+=("$(printf '%-6s %-34s %5ss' "${verdict%% *}" "$name" "$dt")")
  [ "$verdict" = PASS ] || [ "$verdict" = SKIP ] || FAIL_LOGS+=("$name=$log")
  [ "$rc" = 0 ]
}

# not_run NAME WHY : a step that could not run counts as failed.
not_run() {
  printf '=== %-34s FAIL (not run: %s)\n' "$1" "$2"
  FAILED=$((FAILED + 1))
  RESULTS+=("$(printf '%-6s %-34s %s' FAIL "$1" "not run: $2")")
}

cmake_build() {  # cmake_build DIR "NINJA-TARGETS" (space separated, or "" for all) [cmake args...]
  local dir=$1 target=$2; shift 2
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" || return
  nice -n "${BUILD_NICE:-0}" ninja -C "$dir" -j "$JOBS" $target
}

# build_step NAME DIR NINJA-TARGET [cmake args...] : a build step, or with --no-build a
# check that the directory was built before (not counted).
build_step() {
  local name=$1 dir=$2 target=$3; shift 3
  if [ "$BUILD" = 0 ]; then
    [ -f "$dir/build.ninja" ] && return 0
    not_run "$name" "--no-build, and $dir was never built"; return 1
  fi
  step "$name" 1800 cmake_build "$dir" "$target" "$@"
}

export -f cmake_build
export ROOT JOBS

interop_scripts() {
  local f n p
  for f in "$ROOT"/tests/interop/*.sh; do
    n=$(basename "$f" .sh)
    if [ ${#PATTERNS[@]} -gt 0 ]; then
      for p in "${PATTERNS[@]}"; do [[ "$n" == *"$p"* ]] && { echo "$f"; break; }; done
    else
      echo "$f"
    fi
  done
}

run_interop() {  # run_interop LABEL BINARY (BINARY empty: the nbdkit reference)
  local label=$1 bin=$2 f
  local scripts
  mapfile -t scripts < <(interop_scripts)
  [ ${#scripts[@]} -gt 0 ] || { echo "run-all: no interop script matches ${PATTERNS[*]}"; return; }
  for f in "${scripts[@]}"; do
    local name="$label/$(basename "$f" .sh)"
    if [ -n "$bin" ] && [ ! -x "$bin" ]; then not_run "$name" "no binary at $bin"; continue; fi
    if [ -n "$bin" ]; then
      step "$name" 900 env NBD_SERVER=rbd-nbdd RBDNBD="$bin" bash "$f"
    else
      step "$name" 900 env NBD_SERVER=nbdkit bash "$f"
    fi
  done
}

# integration_stage : every tests/integration/*.sh against one dev cluster (real Ceph),
# counted by step() like the rest. Run in a subshell beside the ASan track, it writes its
# counts and results to $LOGS/integration-stage.vars for the main shell to add.
integration_stage() {
  PASSED=0 FAILED=0 SKIPPED=0 RESULTS=() FAIL_LOGS=()
  export RBDNBD_CLUSTER_DIR="$B/test-cluster" DEV_CLUSTER_PORT=${DEV_CLUSTER_PORT:-14300}
  bash deploy/dev-cluster.sh wipe "$RBDNBD_CLUSTER_DIR" >/dev/null 2>&1
  if step dev-cluster 180 bash deploy/dev-cluster.sh start "$RBDNBD_CLUSTER_DIR"; then
    eval "$(bash deploy/dev-cluster.sh env "$RBDNBD_CLUSTER_DIR")"
    export CEPH_CONF
    for f in "$ROOT"/tests/integration/*.sh; do
      case "$(basename "$f")" in lib_*) continue ;; esac
      n=$(basename "$f" .sh)
      step "integration/$n" 900 env RBDNBD="$B/$BIN" RBDNBD_BIN="$B/$BIN" bash "$f"
      # A script that leaves the shared cluster broken (an OSD stopped, frozen, wedged)
      # would fail every script after it: `start` restarts or thaws what it can and waits
      # for active PGs, the probe proves I/O. Else keep its logs, count a failure, re-make it.
      # `start` also restarts an OSD with ops parked by a latched laggy PG, and says so:
      # that counts as broken too (the cluster did not heal itself).
      if ! { timeout 150 bash deploy/dev-cluster.sh start "$RBDNBD_CLUSTER_DIR" 2>&1 |
               tee -a "$LOGS/integration-cluster.log" | { ! grep -q 'parked "waiting for readable"'; } &&
             echo probe | timeout 30 rados -p rbd put run-all-probe - &&
             timeout 30 rados -p rbd rm run-all-probe; } >>"$LOGS/integration-cluster.log" 2>&1; then
        cp -r "$RBDNBD_CLUSTER_DIR/log" "$LOGS/cluster-broken-after-$n" 2>/dev/null
        printf '=== %-34s FAIL (broken after %s: re-made; logs in %s)\n' integration/cluster "$n" "$LOGS/cluster-broken-after-$n"
        FAILED=$((FAILED + 1)); RESULTS+=("$(printf '%-6s %-34s %s' FAIL integration/cluster "broken after $n")")
        FAIL_LOGS+=("integration/cluster=$LOGS/integration-cluster.log")
        bash deploy/dev-cluster.sh wipe "$RBDNBD_CLUSTER_DIR" >/dev/null 2>&1
        step dev-cluster-remake 180 bash deploy/dev-cluster.sh start "$RBDNBD_CLUSTER_DIR"
      fi
    done
  else
    not_run integration "the dev cluster did not start"
  fi
  bash deploy/dev-cluster.sh wipe "$RBDNBD_CLUSTER_DIR" >/dev/null 2>&1
  {
    echo "I_PASSED=$PASSED I_FAILED=$FAILED I_SKIPPED=$SKIPPED"
    declare -p RESULTS FAIL_LOGS | sed 's/^declare -a \([A-Z_]*\)=/I_\1=/'
  } > "$LOGS/integration-stage.vars"
}

echo "run-all: $(date -u +%FT%TZ) on $(nproc) cores; CI=${CI:-false} quick=$QUICK server=$SERVER"

if [ "$SERVER" = nbdkit ]; then
  run_interop interop-nbdkit ""
elif [ "$SERVER" != rbd-nbdd ]; then
  echo "run-all: --server must be rbd-nbdd or nbdkit" >&2; exit 2
else
  BIN=gateway/control/rbd-nbdd
  # 0. Static checks of the Kubernetes manifests and the systemd unit (no build needed).
  if [ ${#PATTERNS[@]} -eq 0 ]; then
    # ~2 min on an idle machine (161 broken copies, each checked; every dashboard query on
    # a real Prometheus); over 5 min seen with the 2 cores busy
    step deploy 900 bash "$ROOT/tests/deploy/run.sh"
    step install-deps 120 bash "$ROOT/tests/deploy/install_deps_test.sh"
    step shell-lib 120 bash "$ROOT/tests/lib/test_common.sh"
    step bench-plots 180 /usr/bin/python3 "$ROOT/tests/bench/plot_test.py"
  fi

  # 1. The release build and its unit tests.
  # Line tables only (-g1): stack traces keep file:line, and the build takes a quarter
  # less time than with full debug info (-g). A unity build, as the ASan one: the gRPC,
  # protobuf, spdlog and JSON headers are parsed once per unity TU instead of once per
  # file (the release build was 945 s of compile time in 254 TUs on 2 cores, 477 s wall).
  if build_step build "$B" "" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1" -DCMAKE_UNITY_BUILD=ON; then
    step unit 1200 ctest --test-dir "$B" --output-on-failure -j "$JOBS"
  else
    not_run unit "build failed"
  fi

  # The integration stage (5) needs the release build and a dev cluster, and spends most
  # of its time waiting on Ceph (one memstore OSD, small I/O, timeouts it provokes): it
  # runs now, in the background, beside the ASan and fuzz track, whose builds run at nice
  # 19 so that the cluster's latencies stay what they are alone (measured: the ASan build
  # got 51 of its 84 steps done in the 12 min integration took). Its lines are printed at
  # stage 5. e2e stays last and alone: run beside the ASan track too, its UML guests (a
  # ptrace round trip per guest syscall) ran 1.5-1.9x slower and the suite took longer.
  INTEGRATION_PID=
  if [ "$INTEGRATION" = 1 ] && [ ${#PATTERNS[@]} -eq 0 ]; then
    integration_stage > "$LOGS/integration-stage.out" 2>&1 < /dev/null &
    INTEGRATION_PID=$!
    export BUILD_NICE=19
  fi

  # 2. ASan+UBSan build and its unit tests.
  # A unity build (each target's sources compiled as one or a few TUs): instrumented code
  # of the headers' inline functions is generated once per unity TU, not once per file,
  # and the build takes half the time (404 s -> ~200 s on 2 cores, measured). The fuzz
  # build (clang) stays one TU per file; a developer's plain `cmake -B build` is one TU
  # per file too, so a missing #include still fails there.
  # Only what ctest and interop-asan use is built: the unit tests, the daemon, and the node
  # plugin (a ctest checks the libraries it links). The controller and tests/ceph's program
  # run from the release build only (integration, e2e); skipping them saves ~50 s of
  # compile time.
  ASAN_OK=0
  if [ "$QUICK" = 0 ]; then
    if build_step build-asan "$B-asan" "tests/unit/all $BIN csi/rbd-nbdd-csi" -DRBDNBD_SANITIZE=ON -DCMAKE_UNITY_BUILD=ON; then
      ASAN_OK=1
      step unit-asan 1200 ctest --test-dir "$B-asan" --output-on-failure -j "$JOBS"
    else
      not_run unit-asan "build-asan failed"
    fi

    # 3. Fuzz targets (clang + libFuzzer), a short run each. Only what tests/fuzz/ needs
    # is built (ninja's per-directory "all" target).
    if CC=clang CXX=clang++ build_step build-fuzz "$B-fuzz" tests/fuzz/all -DRBDNBD_FUZZ=ON; then
      if [ -f "$ROOT/tests/fuzz/run-fuzz.sh" ]; then
        step fuzz 900 bash "$ROOT/tests/fuzz/run-fuzz.sh" "$B-fuzz" 20
      fi
    elif [ -f "$ROOT/tests/fuzz/run-fuzz.sh" ]; then
      not_run fuzz "build-fuzz failed"
    fi
  fi

  # 4. Interop with real NBD clients, against each build's server.
  run_interop interop "$B/$BIN"
  if [ "$QUICK" = 0 ]; then
    if [ "$ASAN_OK" = 1 ]; then
      ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
      UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        run_interop interop-asan "$B-asan/$BIN"
    else
      not_run interop-asan "build-asan failed"
    fi
  fi

  # 5. Integration: it ran beside the ASan track (started after the unit tests); its
  #    lines come now, in the order its steps ran, and count as if they had run here.
  if [ -n "$INTEGRATION_PID" ]; then
    wait "$INTEGRATION_PID"
    cat "$LOGS/integration-stage.out"
    if [ -s "$LOGS/integration-stage.vars" ]; then
      # shellcheck disable=SC1091
      . "$LOGS/integration-stage.vars"
      PASSED=$((PASSED + I_PASSED)) FAILED=$((FAILED + I_FAILED)) SKIPPED=$((SKIPPED + I_SKIPPED))
      RESULTS+=("${I_RESULTS[@]}")
      FAIL_LOGS+=("${I_FAIL_LOGS[@]}")
    else
      not_run integration "the integration stage ended without its results ($LOGS/integration-stage.out)"
    fi
  fi

  # 6. End to end under a real kernel (user-mode Linux 6.1; some scenarios also Debian's 6.12
  #    under qemu): batches of scenarios share a guest.
  if [ "$E2E" = 1 ] && [ ${#PATTERNS[@]} -eq 0 ]; then
    step e2e 3000 env RBDNBD_BIN="$B/$BIN" CSI_BIN="$B/csi/rbd-nbdd-csi" E2E_JOBS="${E2E_JOBS:-2}" bash "$ROOT/tests/e2e/run-all.sh"
  fi
fi

echo
echo "=== summary ($(( (SECONDS - T0) / 60 ))m$(( (SECONDS - T0) % 60 ))s; logs in $LOGS)"
printf '  %s\n' "${RESULTS[@]}"
# Why each failed step failed, once more at the very end (where a CI page that shows only
# the output's tail still has it): the lines of its log that say FAIL or error, else its
# last lines. The full tail was printed when the step ended.
for f in "${FAIL_LOGS[@]}"; do
  echo "--- why ${f%%=*} failed (${f#*=}):"
  { grep -aE 'FAIL|[Ee]rror|[Tt]imed? ?out' "${f#*=}" || tail -n 6 "${f#*=}"; } 2>/dev/null | tail -n 6 | cut -c1-240 | sed 's/^/    /'
done
if [ "$SKIPPED" -gt 0 ]; then
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
  echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
