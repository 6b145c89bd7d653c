#!/usr/bin/env bash
# patchfarm quickstart: starts a local registry, makes a tiny base image, builds a
# Model-in-Image auxiliary image with patchfarm (no Docker daemon), inspects it, copies it to a
# second "regional" registry, and stops everything it started. Campaigns arrive with the farm.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tests/deps.sh
echo "== building patchfarm (release)"
cargo build --release --locked -q -p patchfarm-coordinator
pf="$root/target/release/patchfarm"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() { # name -> prints host:port
  local name=$1 port
  port=$(free_port)
  cat > "$work/$name.yml" <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/$name-data}}
http: {addr: 127.0.0.1:$port}
YAML
  docker-registry serve "$work/$name.yml" > "$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
  echo "127.0.0.1:$port"
}

central=$(start_registry central)
regional=$(start_registry regional)
echo "== registries: central $central, regional $regional"

echo "== base image: busybox, made with umoci and pushed with skopeo"
umoci init --layout "$work/base" >/dev/null
umoci new --image "$work/base:1" >/dev/null
umoci unpack --image "$work/base:1" "$work/bundle" >/dev/null
mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/etc"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in sh ls cat id; do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$work/bundle/rootfs/etc/passwd"
printf 'root:x:0:\n' > "$work/bundle/rootfs/etc/group"
umoci repack --image "$work/base:1" "$work/bundle" >/dev/null
umoci config --image "$work/base:1" --os linux --architecture amd64 --config.cmd /bin/sh >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$work/base:1" "docker://$central/busybox:1"

echo "== inputs: a WDT model, variables, and a WDT installer zip in patchfarm's cache"
export PATCHFARM_CACHE="$work/cache"
cat > "$work/model.yaml" <<'YAML'
domainInfo:
  AdminUserName: '@@SECRET:__weblogic-credentials__:username@@'
  AdminPassword: '@@SECRET:__weblogic-credentials__:password@@'
topology:
  Name: '@@ENV:CUSTOM_DOMAIN_NAME@@'
  Cluster:
    cluster-1:
      DynamicServers: {ServerTemplate: cluster-1-template, DynamicClusterSize: 5}
YAML
echo 'CLUSTER_SIZE=5' > "$work/variables.properties"
python3 - "$work/weblogic-deploy.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("weblogic-deploy/VERSION.txt", "WebLogic Deploy Tooling 4.2.1\n")
    info = zipfile.ZipInfo("weblogic-deploy/bin/createDomain.sh"); info.external_attr = 0o755 << 16
    z.writestr(info, "#!/bin/sh\necho demo WDT\n")
PY
"$pf" cache addInstaller --type wdt --version latest --path "$work/weblogic-deploy.zip"
"$pf" cache listItems

echo "== patchfarm createAuxImage"
"$pf" createAuxImage --tag "$central/wls/domain1-aux:v1" --fromImage "$central/busybox:1" \
  --wdtModel "$work/model.yaml" --wdtVariables "$work/variables.properties"
echo "== again: same inputs, same digest, nothing uploaded"
"$pf" createAuxImage --tag "$central/wls/domain1-aux:v1" --fromImage "$central/busybox:1" \
  --wdtModel "$work/model.yaml" --wdtVariables "$work/variables.properties"

echo "== patchfarm inspect (read from the layers, nothing run)"
"$pf" inspect --image "$central/wls/domain1-aux:v1"

echo "== patchfarm copy to the regional registry (same digest)"
"$pf" copy "$central/wls/domain1-aux:v1" "$regional/wls/domain1-aux:v1"
skopeo inspect --tls-verify=false --format 'regional copy: {{.Name}}@{{.Digest}}' "docker://$regional/wls/domain1-aux:v1"
echo "== done; everything started here is stopped on exit"
