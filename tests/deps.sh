#!/usr/bin/env bash
# Installs the Debian packages patchfarm's tests, quickstart and benchmarks use (idempotent).
set -euo pipefail

# runc runs build steps (the executor); the JDK's javac and jar build the OUI and OPatch
# stand-ins; dpkg-deb and dpkg-scanpackages build the local apt repository --packageManager uses;
# systemd-analyze verifies deploy/systemd's units; rpm, rpmbuild, db5.3_load and sqlite3 write the
# OL8 (Berkeley DB) and OL9 (SQLite) rpm databases inspect reads; openssl makes signing keys and
# verifies image signatures independently; kubectl (Debian's kubernetes-client) renders
# deploy/kubernetes with its kustomize; chromium and chromium-driver drive the dashboard test.
packages=(docker-registry skopeo umoci busybox-static apache2-utils pigz zstd strace time python3 debootstrap runc default-jdk-headless default-jdk-headless dpkg dpkg-dev systemd rpm rpm db5.3-util sqlite3 openssl kubernetes-client chromium chromium-driver curl)
commands=(docker-registry skopeo umoci busybox htpasswd pigz zstd strace /usr/bin/time python3 debootstrap /usr/sbin/runc javac jar dpkg-deb dpkg-scanpackages systemd-analyze rpm rpmbuild db5.3_load sqlite3 openssl kubectl chromium chromedriver curl)
# The benchmark also runs a 3-member etcd cluster as the coordinator's baseline.
if [ "${1:-}" = "--bench" ]; then
  packages+=(etcd-server etcd-client)
  commands+=(etcd etcdctl)
fi

missing=()
# Python's jsonpatch applies a campaign's Domain patches independently of patchfarm's own code.
if ! python3 -c 'import jsonpatch, jsonschema' >/dev/null 2>&1; then
  missing+=(python3-jsonpatch python3-jsonschema)
fi
# From PyPI: spdx-tools validates the SBOMs signed images carry; kubernetes-validate checks
# deploy/kubernetes against the Kubernetes API schemas; selenium drives the dashboard in
# chromium and prometheus_client parses the daemons' metrics.
for module in selenium prometheus_client; do
  if ! python3 -c "import $module" >/dev/null 2>&1; then
    python3 -m pip install -q --break-system-packages "$module" >&2 \
      || python3 -m pip install -q "$module" >&2 \
      || echo "warning: could not install $module from PyPI; its test will say so" >&2
  fi
done
for pair in pyspdxtools:spdx-tools kubernetes-validate:kubernetes-validate; do
  if ! command -v "${pair%%:*}" >/dev/null 2>&1; then
    python3 -m pip install -q --break-system-packages "${pair#*:}" >&2 \
      || python3 -m pip install -q "${pair#*:}" >&2 \
      || echo "warning: could not install ${pair#*:} from PyPI; its test will say so" >&2
  fi
done
for i in "${!commands[@]}"; do
  if ! command -v "${commands[$i]}" >/dev/null 2>&1; then
    missing+=("${packages[$i]}")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
