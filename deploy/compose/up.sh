#!/usr/bin/env bash
# Brings the compose deployment up from nothing: patchfarm's images into the local engine
# (deploy/images.sh engine), `docker-compose up`, then waits until the coordinators have a leader
# and the three agents are registered. With --campaign DIR it then runs the quickstart's demo
# campaign against the deployment through the published ports and writes its report into DIR.
# Usage: deploy/compose/up.sh [--bin DIR] [--campaign DIR]    (stop: deploy/compose/down.sh)
#   --bin DIR   binaries from DIR (e.g. target/debug) instead of a release build
# Environment: COMPOSE_PROJECT_NAME (default patchfarm), and the docker-compose.yml's variables
# (PATCHFARM_SUBNET, PATCHFARM_REGISTRY_IP, PATCHFARM_PORT_1..3, PATCHFARM_LEASE_MS).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="" campaign=""
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$(realpath "${2:?--bin needs a directory}"); shift 2;;
    --campaign) campaign=$(realpath -m "${2:?--campaign needs a directory}"); shift 2;;
    *) echo "usage: deploy/compose/up.sh [--bin DIR] [--campaign DIR]" >&2; exit 2;;
  esac
done
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-patchfarm}
if [ -z "$bin" ]; then
  echo "== building patchfarm (release)" >&2
  (cd "$root" && cargo build --release --locked -q -p patchfarm-cli -p patchfarm-coordinator -p patchfarm-agent)
  bin="$root/target/release"
fi
bash "$root/deploy/images.sh" --bin "$bin" engine
echo "== docker-compose up ($COMPOSE_PROJECT_NAME)" >&2
docker-compose -f "$here/docker-compose.yml" up -d >&2
export PATCHFARM_FARM="127.0.0.1:${PATCHFARM_PORT_1:-17001},127.0.0.1:${PATCHFARM_PORT_2:-17002},127.0.0.1:${PATCHFARM_PORT_3:-17003}"
export PATCHFARM_TLS_DIR=$(realpath -m "${PATCHFARM_CERTS:-$here/certs}")
registry="${PATCHFARM_REGISTRY_IP:-172.29.0.10}:5000"
ready=""
for _ in $(seq 300); do
  if "$bin/patchfarm" cluster status --json 2>/dev/null | grep -q '"role": "leader"' &&
     [ "$("$bin/patchfarm" agents list --json 2>/dev/null | grep -c '"up": true')" -ge 3 ] &&
     curl -sf --max-time 2 "http://$registry/v2/" >/dev/null; then
    ready=1; break
  fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  docker-compose -f "$here/docker-compose.yml" ps >&2
  docker-compose -f "$here/docker-compose.yml" logs --tail=20 >&2
  echo "deploy/compose/up.sh: the deployment did not become ready within 60 s (logs above)" >&2
  exit 1
fi
"$bin/patchfarm" cluster status
echo "== ready: PATCHFARM_FARM=$PATCHFARM_FARM PATCHFARM_TLS_DIR=$PATCHFARM_TLS_DIR registry $registry" >&2
if [ -n "$campaign" ]; then
  bash "$root/deploy/quickstart.sh" --bin "$bin" --out "$campaign" \
    --registry "$registry" --farm "$PATCHFARM_FARM" --tls-dir "$PATCHFARM_TLS_DIR"
fi
