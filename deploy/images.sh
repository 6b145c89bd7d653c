#!/usr/bin/env bash
# Builds patchfarm's own images — coordinator, agent, CLI — with patchfarm itself (`patchfarm
# assemble`: no Dockerfile, no daemon) from the release binaries on a minimal Debian base made
# by debootstrap, and pushes them to REGISTRY/patchfarm/{coordinator,agent,cli}:VERSION.
# Reproducible: SOURCE_DATE_EPOCH is the last commit's time, so the same sources give the same
# digests (the base rootfs is cached in target/images/rootfs; delete it to take a newer Debian).
# Usage: deploy/images.sh REGISTRY[/PREFIX]     (run as root: debootstrap needs it)
set -euo pipefail
cd "$(dirname "$0")/.."
registry="${1:?usage: deploy/images.sh REGISTRY[/PREFIX]}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

command -v debootstrap >/dev/null || { echo "installing debootstrap" >&2; apt-get install -y -qq debootstrap >/dev/null; }
echo "== building patchfarm (release)" >&2
cargo build --release --locked -q -p patchfarm-cli -p patchfarm-coordinator -p patchfarm-agent
bin="$(pwd)/target/release"

rootfs="$(pwd)/target/images/rootfs"
if [ ! -x "$rootfs/bin/sh" ]; then
  echo "== debootstrap: a minimal Debian (bookworm) with CA certificates and runc" >&2
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates,runc bookworm "$rootfs" >&2
  # Nothing of the build host's apt runs in these images: their package lists go.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*
  mkdir -p "$rootfs/var/lib/patchfarm" "$rootfs/var/cache/patchfarm" "$rootfs/etc/patchfarm"
fi

pf() { "$bin/patchfarm" "$@"; }
base="$registry/patchfarm/base:$version"
echo "== $base" >&2
pf assemble --fromImage scratch --tag "$base" --add "$rootfs:/" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --label "org.opencontainers.image.source=https://github.com/patchfarm/patchfarm"
for name in coordinator agent cli; do
  case "$name" in
    coordinator) binary=patchfarm-coordinator; user=(--user 10001:10001) ;;
    agent) binary=patchfarm-agent; user=() ;;   # root: runc and overlay mounts for build steps
    cli) binary=patchfarm; user=(--user 10001:10001) ;;
  esac
  image="$registry/patchfarm/$name:$version"
  echo "== $image" >&2
  pf assemble --fromImage "$base" --tag "$image" --add "$bin/$binary:/usr/local/bin/$binary" \
    "${user[@]}" --label "org.opencontainers.image.title=$binary" \
    --label "org.opencontainers.image.version=$version" \
    --entrypoint "/usr/local/bin/$binary"
done
