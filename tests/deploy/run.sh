#!/bin/bash
# tests/deploy/run.sh - static checks of the Kubernetes manifests (deploy/kubernetes) and
# the systemd unit (deploy/rbd-nbdd.service). No cluster, no build, no root needed.
#   1. test_manifests.py: parses every YAML file and checks the fields that matter
#      (one line per check, "N passed, N failed").
#   2. test_mutations.py: breaks one field at a time in a temporary copy and requires
#      test_manifests.py to fail on the right check (so no check is vacuous).
#   3. dashboard_prometheus.py: every Grafana dashboard query on a real Prometheus
#      (Debian's prometheus) scraping synthetic series shaped by gateway/metrics/METRICS.md;
#      each must return data (skipped without /usr/bin/prometheus, a failure when CI=true).
# Exit 0 pass, 1 fail, 77 skip (no /usr/bin/python3 or no python3-yaml).
# /usr/bin/python3 explicitly: the first python3 on PATH may lack Debian's modules.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "skip: $PY is missing"; exit 77; }
"$PY" -c 'import yaml' 2>/dev/null || { echo "skip: python3-yaml is missing (apt-get install python3-yaml)"; exit 77; }

echo "--- test_manifests.py"
"$PY" "$HERE/test_manifests.py" "$@"; rc1=$?
[ "$rc1" = 77 ] && exit 77
echo "--- test_mutations.py (each broken copy must fail the right check)"
"$PY" "$HERE/test_mutations.py"; rc2=$?
echo "--- dashboard_prometheus.py (the dashboard's queries on a real Prometheus)"
"$PY" "$HERE/dashboard_prometheus.py"; rc3=$?
# without prometheus the dashboard run is skipped, except in CI (nothing skips there)
if [ "$rc3" = 77 ]; then
  if [ "${CI:-}" = true ]; then echo "deploy: prometheus is missing and CI=true: that is a failure"; else rc3=0; fi
fi
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ] && [ "$rc3" = 0 ]; then
  echo "deploy: PASS"; exit 0
fi
echo "deploy: FAIL (manifests rc $rc1, mutations rc $rc2, dashboard on prometheus rc $rc3)"; exit 1
