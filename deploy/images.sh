#!/usr/bin/env bash
# Builds patchfarm's own images — coordinator, agent, CLI, and the registry the compose
# deployment runs — with patchfarm itself (`patchfarm assemble`: no Dockerfile, no daemon) from
# the binaries on a minimal Debian base made by debootstrap.
# TARGET is REGISTRY[/PREFIX] (pushed there as PREFIX/patchfarm/NAME:VERSION) or `engine` (loaded
# into the local Docker engine as patchfarm/NAME:VERSION, what deploy/compose runs).
# Reproducible: SOURCE_DATE_EPOCH is the last commit's time, so the same sources give the same
# digests (the base rootfs is cached in target/images/rootfs; delete it to take a newer Debian).
# Usage: deploy/images.sh [--bin DIR] TARGET   (root: debootstrap needs it)
#   --bin DIR   take the binaries from DIR (e.g. target/debug) instead of a release build
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$(realpath "${2:?--bin needs a directory}"); shift 2;;
    --bin=*) bin=$(realpath "${1#--bin=}"); shift;;
    -*) echo "usage: deploy/images.sh [--bin DIR] REGISTRY[/PREFIX]|engine" >&2; exit 2;;
    *) break;;
  esac
done
target="${1:?usage: deploy/images.sh [--bin DIR] REGISTRY[/PREFIX]|engine}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
prefix="$target/"
[ "$target" = engine ] && prefix=""

command -v debootstrap >/dev/null || { echo "installing debootstrap" >&2; apt-get install -y -qq debootstrap >/dev/null; }
command -v docker-registry >/dev/null || { echo "installing docker-registry" >&2; apt-get install -y -qq docker-registry >/dev/null; }
if [ -z "$bin" ]; then
  echo "== building patchfarm (release)" >&2
  cargo build --release --locked -q -p patchfarm-cli -p patchfarm-coordinator -p patchfarm-agent
  bin="$(pwd)/target/release"
fi
for binary in patchfarm patchfarm-coordinator patchfarm-agent; do
  [ -x "$bin/$binary" ] || { echo "deploy/images.sh: no $bin/$binary (build it first)" >&2; exit 1; }
done

rootfs="$(pwd)/target/images/rootfs"
if [ ! -x "$rootfs/bin/sh" ]; then
  echo "== debootstrap: a minimal Debian (bookworm) with CA certificates and runc" >&2
  rm -rf "$rootfs" "$rootfs.partial" && mkdir -p "$rootfs.partial"
  debootstrap --variant=minbase --include=ca-certificates,runc bookworm "$rootfs.partial" >&2
  # Nothing of the build host's apt runs in these images: their package lists go.
  rm -rf "$rootfs.partial"/var/lib/apt/lists/* "$rootfs.partial"/var/cache/apt/* "$rootfs.partial"/var/log/*
  mkdir -p "$rootfs.partial/var/lib/patchfarm" "$rootfs.partial/var/cache/patchfarm" \
    "$rootfs.partial/etc/patchfarm" "$rootfs.partial/var/lib/registry"
  # Renamed only when whole, so an interrupted debootstrap is never taken for a base.
  mv "$rootfs.partial" "$rootfs"
fi

pf() { "$bin/patchfarm" "$@"; }
base="${prefix}patchfarm/base:$version"
echo "== $base" >&2
pf assemble --fromImage scratch --tag "$base" --add "$rootfs:/" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --label "org.opencontainers.image.source=https://github.com/patchfarm/patchfarm"

# A fixed path: the image's history names the files added, so a temporary name would change it.
registry_config="$(pwd)/target/images/registry/config.yml"
mkdir -p "$(dirname "$registry_config")"
cat > "$registry_config" <<'YAML'
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: /var/lib/registry}, delete: {enabled: true}}
http: {addr: ":5000"}
YAML
chmod 0644 "$registry_config"   # the image keeps the file's mode
for name in coordinator agent cli registry; do
  add=(); cmd=()   # cmd: more words of the entrypoint
  case "$name" in
    coordinator) binary=$bin/patchfarm-coordinator; user=(--user 10001:10001) ;;
    agent) binary=$bin/patchfarm-agent; user=() ;;   # root: runc and overlay mounts for build steps
    cli) binary=$bin/patchfarm; user=(--user 10001:10001) ;;
    # Debian's registry (distribution), for deployments that bring no registry of their own.
    registry) binary=$(command -v docker-registry); user=(--user 10001:10001)
      add=(--add "$registry_config:/etc/docker/registry/config.yml")
      cmd=(serve /etc/docker/registry/config.yml) ;;
  esac
  image="${prefix}patchfarm/$name:$version"
  entry="/usr/local/bin/$(basename "$binary")"
  echo "== $image" >&2
  pf assemble --fromImage "$base" --tag "$image" --add "$binary:$entry" "${add[@]}" \
    "${user[@]}" --label "org.opencontainers.image.title=$(basename "$binary")" \
    --label "org.opencontainers.image.version=$version" \
    --entrypoint "$entry" "${cmd[@]}"   # last: --entrypoint takes every word after it
done
