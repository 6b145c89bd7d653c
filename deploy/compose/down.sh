#!/usr/bin/env bash
# Stops the compose deployment and deletes its volumes and certificates (a clean slate for up.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-patchfarm}
docker-compose -f "$here/docker-compose.yml" down -v --remove-orphans
certs=$(realpath -m "${PATCHFARM_CERTS:-$here/certs}")
rm -rf "$certs"
