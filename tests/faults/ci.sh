#!/usr/bin/env bash
# The compose deployment end to end, then the fault suite on it: brings deploy/compose up from
# nothing (images built by patchfarm into the local engine), runs the quickstart's demo campaign
# against it to a report, runs the fault schedules (tests/faults/run.py) and the checker, then
# shows the checker bites: the same farm with fencing switched off must be caught. Stops and
# deletes the deployment on exit.
# Usage: tests/faults/ci.sh [--seeds 1,2,3] [--no-broken]     (binaries from target/debug)
# Needs the Docker engine and root (debootstrap, nsenter): in CI (CI=true) their absence fails
# the run; elsewhere it is skipped with the reason.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seeds=1,2,3 broken=1
while [ $# -gt 0 ]; do
  case $1 in
    --seeds) seeds=${2:?--seeds needs a list}; shift 2;;
    --no-broken) broken=""; shift;;
    *) echo "usage: tests/faults/ci.sh [--seeds 1,2,3] [--no-broken]" >&2; exit 2;;
  esac
done
python3 "$root/tests/faults/checker_test.py"   # the checker itself, before any container
unavailable() {
  if [ "${CI:-}" = true ]; then echo "tests/faults/ci.sh: FAILED: $1" >&2; exit 1; fi
  echo "tests/faults/ci.sh: skipped: $1" >&2; exit 0
}
docker info >/dev/null 2>&1 || unavailable "no Docker engine answers (docker info)"
command -v docker-compose >/dev/null || unavailable "no docker-compose"
[ "$(id -u)" = 0 ] || unavailable "needs root (debootstrap builds the images' base, nsenter cuts the network)"
bin="$root/target/debug"
[ -x "$bin/patchfarm" ] || { echo "tests/faults/ci.sh: build first (cargo build --workspace --bins)" >&2; exit 1; }

export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-patchfarm-faults}
# Leases lapse 4 s after an agent's last word, so a pause past a lease is seconds, not minutes.
export PATCHFARM_LEASE_MS=${PATCHFARM_LEASE_MS:-4000}
export PATCHFARM_CERTS=${PATCHFARM_CERTS:-$(mktemp -d)/certs}
compose=(docker-compose -f "$root/deploy/compose/docker-compose.yml")
work=$(mktemp -d)
finish() {
  status=$?
  if [ $status -ne 0 ]; then
    echo "== the deployment's last logs" >&2
    "${compose[@]}" logs --tail=40 >&2 2>&1 || true
  fi
  bash "$root/deploy/compose/down.sh" >/dev/null 2>&1 || true
  rm -rf "$work" "$(dirname "$PATCHFARM_CERTS")"
  exit $status
}
trap finish EXIT
bash "$root/deploy/compose/down.sh" >/dev/null 2>&1 || true

echo "== patchfarm's images, built into the engine (up.sh builds them again: same digests)" >&2
bash "$root/deploy/images.sh" --bin "$bin" engine > "$work/first-build.log" 2>&1 ||
  { cat "$work/first-build.log" >&2; exit 1; }
echo "== compose: up from nothing, then the demo campaign through the published ports" >&2
bash "$root/deploy/compose/up.sh" --bin "$bin" --campaign "$work/report" 2>&1 | tee "$work/up.log"
digests() { grep -o 'docker-daemon:patchfarm/[^ ]*@sha256:[0-9a-f]*' "$1" | sort; }
if ! diff <(digests "$work/first-build.log") <(digests "$work/up.log") >&2 ||
   [ "$(digests "$work/up.log" | wc -l)" -ne 5 ]; then
  echo "tests/faults/ci.sh: FAILED: patchfarm's images differ between two builds of the same sources" >&2
  exit 1
fi
digests "$work/up.log" | sed 's/^/  same digest twice: /' >&2
python3 - "$work/report/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
domains = report["domains"]
assert len(domains) == 6, f"the demo campaign's report names {len(domains)} domains, not 6"
assert all("@sha256:" in d["newImage"] for d in domains), domains
print(f"compose: the demo campaign's report has {len(domains)} domains, every new image by digest")
PY

export PATCHFARM_FARM="127.0.0.1:${PATCHFARM_PORT_1:-17001},127.0.0.1:${PATCHFARM_PORT_2:-17002},127.0.0.1:${PATCHFARM_PORT_3:-17003}"
export PATCHFARM_TLS_DIR=$PATCHFARM_CERTS
echo "== faults: seeds $seeds" >&2
python3 "$root/tests/faults/run.py" --bin "$bin" --report "$work/report" --seeds "$seeds" --work "$work/faults"

if [ -n "$broken" ]; then
  echo "== faults: the same farm with fencing off must be caught by the checker" >&2
  "${compose[@]}" -f "$root/tests/faults/unfenced.yml" up -d --no-deps coordinator-1 coordinator-2 coordinator-3
  python3 "$root/tests/faults/run.py" --bin "$bin" --report "$work/report" --seeds 1 --broken --work "$work/broken"
fi
