# shellcheck shell=bash
# shellcheck disable=SC2034  # SERVER_PID/SERVER_LOG are read by lib.sh
# tests/e2e/lib_ublk.sh - helpers for the ublk_*.sh scenarios (`# e2e-kernel: 6.12`: UML
# has no ublk driver). Source it after lib.sh, whose load_ublk loads ublk_drv.
#
#   no_ublk_nodes                 true when no /dev/ublkb* and no /dev/ublkc* exist
#   start_ublk_server ARGS...     `rbd-nbdd serve ARGS` (with --ublk or --ublk-id), ready once
#                                 serve wrote its pid file, which it does after START_DEV
#                                 returned (the device is live); UBLK_READY_SECS (60) bounds it

no_ublk_nodes() { ! compgen -G '/dev/ublkb*' > /dev/null && ! compgen -G '/dev/ublkc*' > /dev/null; }

start_ublk_server() {
  _SERVER_N=$((_SERVER_N + 1))
  local slog=$E2E_WORK/server.$_SERVER_N.log
  rm -f "$E2E_SOCK" "$E2E_WORK/server.pid"
  log "starting: rbd-nbdd serve --socket $E2E_SOCK $*"
  start_ready server "$slog" "${UBLK_READY_SECS:-60}" test -s "$E2E_WORK/server.pid" -- "$RBDNBD_BIN" serve \
    --socket "$E2E_SOCK" --log-level "$E2E_LOG_LEVEL" --pid-file "$E2E_WORK/server.pid" "$@"
  SERVER_PID=$STARTED_PID SERVER_LOG=$slog   # lib.sh's last teardown stops it
  log "server ready (pid $SERVER_PID)"
}
