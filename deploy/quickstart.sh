#!/usr/bin/env bash
# patchfarm quickstart: starts two local registries, makes a tiny base image, builds a
# Model-in-Image auxiliary image (no Docker daemon), inspects it and copies it to a "regional"
# registry; then builds a WebLogic image from a demo Oracle Home and this machine's JDK, patches
# it with a demo PSU (one new layer), and rebases a Domain-in-Image domain onto the patched base.
# Then the farm: three coordinators (raft, mTLS) and two agents build the same kind of images as
# jobs, through a leader kill. Everything it started is stopped on exit. Campaigns come next.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tests/deps.sh
echo "== building patchfarm (release)"
cargo build --release --locked -q -p patchfarm-coordinator -p patchfarm-agent
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
echo "== WebLogic: a demo Oracle Home (installed form) and a demo PSU (OPatch one-off with a jar action)"
python3 - "$work" <<'PY'
import io, sys, zipfile
work = sys.argv[1]
jar = io.BytesIO()
with zipfile.ZipFile(jar, "w") as j:
    j.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    j.writestr("weblogic/Server.class", b"\xca\xfe\xba\xbe demo Server, unpatched")
with zipfile.ZipFile(f"{work}/wls-demo.zip", "w") as z:
    z.writestr("inventory/registry.xml", '<registry><distributions><distribution status="installed" name="WebLogic Server" version="12.2.1.4.0"/></distributions></registry>\n')
    z.writestr("wlserver/server/lib/weblogic.jar", jar.getvalue())
with zipfile.ZipFile(f"{work}/p37000001_122140_Generic.zip", "w") as z:
    z.writestr("37000001/etc/config/inventory.xml", '<oneoff_inventory><patch_id number="37000001"/><patch_description>DEMO WLS PATCH SET UPDATE</patch_description><required_components><component internal_name="oracle.wls.core.app.server" version="12.2.1.4.0"/></required_components></oneoff_inventory>\n')
    z.writestr("37000001/etc/config/actions.xml", '<oneoff_actions><oracle.wls.core.app.server version="12.2.1.4.0"><jar name="weblogic.jar" path="%ORACLE_HOME%/wlserver/server/lib" class_name="weblogic/Server.class"/></oracle.wls.core.app.server></oneoff_actions>\n')
    z.writestr("37000001/files/wlserver/server/lib/weblogic.jar/weblogic/Server.class", b"\xca\xfe\xba\xbe demo Server, patched by 37000001")
PY
jdk=""
for d in /usr/lib/jvm/*/; do
  if [ -x "$d/bin/java" ] && [ -f "$d/release" ]; then jdk="${d%/}"; break; fi
done
if [ -z "$jdk" ]; then
  echo "no JDK under /usr/lib/jvm: skipping the WebLogic part (apt-get install openjdk-17-jdk-headless to see it)"
  exit 0
fi
echo "== caching this machine's JDK ($jdk), the demo Oracle Home and the PSU"
tar -C "$(dirname "$jdk")" -ch --exclude=jmods --exclude=lib/src.zip -f - "$(basename "$jdk")" | pigz -1 > "$work/jdk.tar.gz"
"$pf" cache addInstaller --type jdk --version demo --path "$work/jdk.tar.gz"
"$pf" cache addInstaller --type wls --version 12.2.1.4.0 --path "$work/wls-demo.zip"
"$pf" cache addPatch --patchId 37000001_12.2.1.4.0 --path "$work/p37000001_122140_Generic.zip"

echo "== patchfarm create: JDK layer + Oracle Home layer, no patches yet"
"$pf" create --tag "$central/wls/base:12.2.1.4" --fromImage "$central/busybox:1" --jdkVersion demo
echo "== patchfarm update --patches: one new layer with only the changed jar and the inventory"
"$pf" update --fromImage "$central/wls/base:12.2.1.4" --tag "$central/wls/base:12.2.1.4-psu" --patches 37000001_12.2.1.4.0
"$pf" inspect --image "$central/wls/base:12.2.1.4-psu" --patches

echo "== a Domain-in-Image domain made by another tool (umoci) on the unpatched base"
skopeo copy -q --src-tls-verify=false "docker://$central/wls/base:12.2.1.4" "oci:$work/dom:x"
umoci unpack --image "$work/dom:x" "$work/dom-bundle" >/dev/null
mkdir -p "$work/dom-bundle/rootfs/u01/domains/base_domain/security" "$work/dom-bundle/rootfs/u01/domains/base_domain/config"
head -c 64 /dev/urandom > "$work/dom-bundle/rootfs/u01/domains/base_domain/security/SerializedSystemIni.dat"
echo '<domain><name>demo</name></domain>' > "$work/dom-bundle/rootfs/u01/domains/base_domain/config/config.xml"
umoci repack --image "$work/dom:x" "$work/dom-bundle" >/dev/null
umoci config --image "$work/dom:x" --config.env DOMAIN_HOME=/u01/domains/base_domain --config.workingdir /u01/domains/base_domain >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$work/dom:x" "docker://$central/domains/demo:1"
echo "== patchfarm rebase onto the patched base: a new manifest, the domain layer reused by digest"
"$pf" rebase --sourceImage "$central/domains/demo:1" --targetImage "$central/wls/base:12.2.1.4-psu" --tag "$central/domains/demo:1-psu"
echo "== the farm: certificates, three coordinators on loopback (raft, mTLS), two agents"
"$pf" certs init --out "$work/certs" --coordinators 3 --agents 2 >/dev/null
coord=$(dirname "$pf")/patchfarm-coordinator
declare -A addr
for id in 1 2 3; do addr[$id]="127.0.0.1:$(free_port)"; done
peers=(--peer "1=${addr[1]}" --peer "2=${addr[2]}" --peer "3=${addr[3]}")
declare -A coord_pid
for id in 1 2 3; do
  RUST_LOG=warn "$coord" --node-id "$id" --listen "${addr[$id]}" --data-dir "$work/coord-$id" \
    --tls-dir "$work/certs" "${peers[@]}" --artifact-store "oci:$work/store" > "$work/coord-$id.log" 2>&1 &
  pids+=($!); coord_pid[$id]=$!
done
farm=(--farm "${addr[1]},${addr[2]},${addr[3]}" --tls-dir "$work/certs")
for _ in $(seq 100); do "$pf" "${farm[@]}" cluster status --json 2>/dev/null | grep -q '"role": "leader"' && break; sleep 0.1; done
"$pf" "${farm[@]}" cluster status
agent_bin=$(dirname "$pf")/patchfarm-agent
for k in 1 2; do
  RUST_LOG=warn "$agent_bin" --name "agent-$k" --coordinator "${addr[1]},${addr[2]},${addr[3]}" \
    --cache-dir "$work/agent-$k-cache" --tls-dir "$work/certs" --slots 2 > "$work/agent-$k.log" 2>&1 &
  pids+=($!)
done
echo "-- installers and the PSU go to the farm's artifact store (catalog replicated by raft)"
"$pf" "${farm[@]}" cache addInstaller --type jdk --version demo --path "$work/jdk.tar.gz"
"$pf" "${farm[@]}" cache addInstaller --type wls --version 12.2.1.4.0 --path "$work/wls-demo.zip"
"$pf" "${farm[@]}" cache addPatch --patchId 37000001_12.2.1.4.0 --path "$work/p37000001_122140_Generic.zip"
echo "-- the same create, as a farm job (--wait follows it; same inputs, same digest as above)"
"$pf" "${farm[@]}" create --wait --tag "$central/wls/farm:12.2.1.4" --fromImage "$central/busybox:1" --jdkVersion demo
job=$("$pf" "${farm[@]}" update --fromImage "$central/wls/farm:12.2.1.4" --tag "$central/wls/farm:12.2.1.4-psu" --patches 37000001)
echo "-- submitted $job (update with the PSU)"
leader=$("$pf" "${farm[@]}" cluster status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])')
echo "-- kill -9 of the leader (node $leader); the other two elect a new one"
{ kill -9 "${coord_pid[$leader]}"; wait "${coord_pid[$leader]}"; } 2>/dev/null || true
for _ in $(seq 100); do
  now=$("$pf" "${farm[@]}" cluster status --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader"])' || true)
  [ -n "$now" ] && [ "$now" != 0 ] && [ "$now" != "$leader" ] && break
  sleep 0.1
done
"$pf" "${farm[@]}" cluster status
echo "-- the update completes through the new leader"
for _ in $(seq 300); do
  state=$("$pf" "${farm[@]}" --json jobs show "$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])')
  case $state in succeeded|failed|cancelled) break;; esac
  sleep 0.2
done
"$pf" "${farm[@]}" jobs list
"$pf" "${farm[@]}" jobs logs "$job"
"$pf" "${farm[@]}" agents list
[ "$state" = succeeded ] || { echo "job $job ended $state"; exit 1; }
echo "== done; everything started here is stopped on exit"
