#!/usr/bin/env bash
# patchfarm quickstart: starts two local registries, makes a tiny base image, builds a
# Model-in-Image auxiliary image (no Docker daemon), inspects it and copies it to a "regional"
# registry; then builds a WebLogic image from a demo Oracle Home and this machine's JDK, patches
# it with a demo PSU (one new layer), and rebases a Domain-in-Image domain onto the patched base.
# Then the main job: a one-node farm (coordinator + two agents) runs the October CPU campaign over
# a demo fleet of six domains (Domain-in-Image, Model-in-Image with and without auxiliary images,
# domain on a persistent volume) and writes report.json and report.md to --out DIR (default
# ./quickstart-out). Everything it started is stopped on exit.
# With --registry HOST:PORT and --farm ADDR[,ADDR…] --tls-dir DIR it uses that registry and farm
# instead of starting its own (deploy/compose/up.sh --campaign runs it so against the compose
# deployment); --bin DIR takes the binaries from DIR instead of a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/quickstart-out"
usage="usage: deploy/quickstart.sh [--out DIR] [--bin DIR] [--registry HOST:PORT --farm ADDR[,ADDR…] --tls-dir DIR]"
registry="" farm="" tls_dir="" bin=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$(realpath -m "${2:?--out needs a directory}"); shift 2;;
    --out=*) out=$(realpath -m "${1#--out=}"); shift;;
    --bin) bin=$(realpath "${2:?--bin needs a directory}"); shift 2;;
    --registry) registry=${2:?--registry needs HOST:PORT}; shift 2;;
    --farm) farm=${2:?--farm needs ADDR[,ADDR…]}; shift 2;;
    --tls-dir) tls_dir=$(realpath "${2:?--tls-dir needs a directory}"); shift 2;;
    *) echo "$usage" >&2; exit 2;;
  esac
done
if [ -n "$farm$tls_dir$registry" ] && { [ -z "$farm" ] || [ -z "$tls_dir" ] || [ -z "$registry" ]; }; then
  echo "$usage: --registry, --farm and --tls-dir go together" >&2; exit 2
fi

bash tests/deps.sh
# The single-machine part runs here, whatever farm the caller's environment names.
unset PATCHFARM_FARM PATCHFARM_TLS_DIR
if [ -z "$bin" ]; then
  echo "== building patchfarm (release)"
  cargo build --release --locked -q -p patchfarm-cli -p patchfarm-coordinator -p patchfarm-agent
  bin="$root/target/release"
fi
pf="$bin/patchfarm"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Sets $address to its host:port; not run in $(…), so its pid reaches `pids` and is stopped.
start_registry() { # name
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
  address="127.0.0.1:$port"
}

if [ -n "$registry" ]; then
  # One registry holds both "regions"; plain HTTP, as the deployment's own agents reach it.
  central=$registry regional=$registry/regional
  export PATCHFARM_INSECURE_REGISTRIES=$registry
else
  start_registry central
  central=$address
  start_registry regional
  regional=$address
fi
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

dii() { # NAME BASE: a Domain-in-Image domain made by another tool (umoci) on BASE
  local name=$1 base=$2 dir="$work/dii-$1"
  skopeo copy -q --src-tls-verify=false "docker://$base" "oci:$dir:x"
  umoci unpack --image "$dir:x" "$dir-b" >/dev/null
  mkdir -p "$dir-b/rootfs/u01/domains/$name/security" "$dir-b/rootfs/u01/domains/$name/config"
  head -c 64 /dev/urandom > "$dir-b/rootfs/u01/domains/$name/security/SerializedSystemIni.dat"
  echo "<domain><name>$name</name></domain>" > "$dir-b/rootfs/u01/domains/$name/config/config.xml"
  umoci repack --image "$dir:x" "$dir-b" >/dev/null
  umoci config --image "$dir:x" --config.env "DOMAIN_HOME=/u01/domains/$name" \
    --config.workingdir "/u01/domains/$name" >/dev/null
  skopeo copy -q --dest-tls-verify=false "oci:$dir:x" "docker://$central/domains/$name:1"
}
echo "== a Domain-in-Image domain made by another tool (umoci) on the unpatched base"
dii demo "$central/wls/base:12.2.1.4"
echo "== patchfarm rebase onto the patched base: a new manifest, the domain layer reused by digest"
"$pf" rebase --sourceImage "$central/domains/demo:1" --targetImage "$central/wls/base:12.2.1.4-psu" --tag "$central/domains/demo:1-psu"
if [ -n "$farm" ]; then
  echo "== the farm at $farm"
  export PATCHFARM_FARM="$farm" PATCHFARM_TLS_DIR="$tls_dir"
  "$pf" cluster status
else
  echo "== the farm: one coordinator (raft, mTLS), two agents, installers in the artifact store"
  "$pf" certs init --out "$work/certs" --coordinators 1 --agents 2 >/dev/null
  addr="127.0.0.1:$(free_port)"
  dashboard="127.0.0.1:$(free_port)"
  head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$work/dashboard.token"
  RUST_LOG=warn "$(dirname "$pf")/patchfarm-coordinator" --node-id 1 --listen "$addr" --peer "1=$addr" \
    --data-dir "$work/coord" --tls-dir "$work/certs" --artifact-store "oci:$work/store" \
    --http-listen "$dashboard" --dashboard-token-file "$work/dashboard.token" > "$work/coord.log" 2>&1 &
  pids+=($!)
  export PATCHFARM_FARM="$addr" PATCHFARM_TLS_DIR="$work/certs"
  for _ in $(seq 100); do "$pf" cluster status --json 2>/dev/null | grep -q '"role": "leader"' && break; sleep 0.1; done
  for k in 1 2; do
    RUST_LOG=warn "$(dirname "$pf")/patchfarm-agent" --name "agent-$k" --coordinator "$addr" \
      --cache-dir "$work/agent-$k-cache" --tls-dir "$work/certs" --slots 2 > "$work/agent-$k.log" 2>&1 &
    pids+=($!)
  done
fi
echo "-- the quarter's demo patches: the PSU above and a recommended one-off, with the patch catalog"
python3 - "$work" <<'PY'
import sys, zipfile
work = sys.argv[1]
with zipfile.ZipFile(f"{work}/p37000002_122140_Generic.zip", "w") as z:
    z.writestr("37000002/etc/config/inventory.xml", '<oneoff_inventory><patch_id number="37000002"/><patch_description>DEMO ONE-OFF</patch_description><required_components><component internal_name="oracle.wls.core.app.server" version="12.2.1.4.0"/></required_components></oneoff_inventory>\n')
    z.writestr("37000002/etc/config/actions.xml", '<oneoff_actions><oracle.wls.core.app.server version="12.2.1.4.0"><copy file_name="readme-37000002.txt" name="readme-37000002.txt" path="%ORACLE_HOME%/wlserver/server/lib"/></oracle.wls.core.app.server></oneoff_actions>\n')
    z.writestr("37000002/files/readme-37000002.txt", "demo one-off 37000002\n")
PY
cat > "$work/catalog.yaml" <<YAML
quarter: 2026-10
products:
  - {type: wls, version: 12.2.1.4.0, psu: 37000001_12.2.1.4.0, recommended: [37000002_12.2.1.4.0]}
YAML
"$pf" cache addInstaller --type jdk --version demo --path "$work/jdk.tar.gz"
"$pf" cache addInstaller --type wls --version 12.2.1.4.0 --path "$work/wls-demo.zip"
"$pf" cache addPatch --patchId 37000001_12.2.1.4.0 --path "$work/p37000001_122140_Generic.zip"
"$pf" cache addPatch --patchId 37000002_12.2.1.4.0 --path "$work/p37000002_122140_Generic.zip"

echo "-- today's fleet: six domains on last quarter's base (all three domain home source types)"
old="$central/wls/base:2026-07"
"$pf" create --wait --tag "$old" --fromImage "$central/busybox:1" --jdkVersion demo
dii payments "$old"; dii billing "$old"
# A Model-in-Image domain whose model lives in its image (WDT and the model move with a rebase).
dir="$work/mii-orders"
skopeo copy -q --src-tls-verify=false "docker://$old" "oci:$dir:x"
umoci unpack --image "$dir:x" "$dir-b" >/dev/null
mkdir -p "$dir-b/rootfs/u01/wdt/models" "$dir-b/rootfs/u01/wdt/weblogic-deploy"
cp "$work/model.yaml" "$dir-b/rootfs/u01/wdt/models/orders.yaml"
echo "WebLogic Deploy Tooling 4.2.1" > "$dir-b/rootfs/u01/wdt/weblogic-deploy/VERSION.txt"
umoci repack --image "$dir:x" "$dir-b" >/dev/null
umoci config --image "$dir:x" --config.env DOMAIN_HOME= --config.env WDT_HOME=/u01/wdt/weblogic-deploy \
  --config.env WDT_MODEL_HOME=/u01/wdt/models >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$dir:x" "docker://$central/mii/orders:1"

cat > "$work/cpu-2026-10.yaml" <<YAML
name: cpu-2026-10
patchCatalog: $work/catalog.yaml
registries: ["$central", "$regional/mirror"]
limits: {maxParallelJobs: 4, retries: 3}
bases:
  - name: wls14
    version: 12.2.1.4.0
    jdkVersion: demo
    fromImage: "$central/busybox:1"
    recommendedPatches: true
    tag: wls/base:2026-10
domains:
  - {name: payments, namespace: prod, domainHomeSourceType: DomainInImage, image: "$central/domains/payments:1", base: wls14}
  - {name: billing, namespace: prod, domainHomeSourceType: DomainInImage, image: "$central/domains/billing:1", base: wls14}
  - {name: orders, namespace: shop, domainHomeSourceType: ModelInImage, image: "$central/mii/orders:1", base: wls14}
  - {name: domain1, namespace: shop, domainHomeSourceType: ModelInImage, image: "$old", base: wls14,
     auxiliaryImages: ["$central/wls/domain1-aux:v1"]}
  - {name: reports, namespace: ops, domainHomeSourceType: PersistentVolume, image: "$old", base: wls14}
  - {name: audit, namespace: ops, domainResource: audit-domain, domainHomeSourceType: PersistentVolume, image: "$old", base: wls14}
YAML
if [ -z "$farm" ]; then
  echo "== the campaign: plan, submit, watch (live in a browser while it runs: https://$dashboard/campaigns/cpu-2026-10?token=$(cat "$work/dashboard.token"), the farm's own certificate)"
else
  echo "== the campaign: plan, submit, watch"
fi
"$pf" campaign plan "$work/cpu-2026-10.yaml"
started=$(date +%s)
"$pf" campaign submit "$work/cpu-2026-10.yaml" --wait
"$pf" campaign status cpu-2026-10
"$pf" campaign report cpu-2026-10 --out "$out"
# The campaign file and its patch catalog beside the report, to run the same campaign again.
cp "$work/catalog.yaml" "$out/catalog.yaml"
sed "s#$work/catalog.yaml#$out/catalog.yaml#" "$work/cpu-2026-10.yaml" > "$out/campaign.yaml"
echo "-- campaign done in $(( $(date +%s) - started )) s; the report's Domain patches:"
python3 - "$out/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for d in report["domains"]:
    print(f'{d["namespace"]}/{d["name"]} ({d["domainHomeSourceType"]}): {d["oldImage"]} -> {d["newImage"]}')
    print(f'    {d["kubectl"]}')
PY
"$pf" agents list
if [ -n "$farm" ]; then
  echo "== done: $out/report.json and $out/report.md"
  exit 0
fi
# The dashboard's campaign page as a browser gets it, kept beside the report.
curl -sk --max-time 10 -H "Authorization: Bearer $(cat "$work/dashboard.token")" \
  "https://$dashboard/campaigns/cpu-2026-10" > "$out/campaign.html"
grep -q 'data-state="succeeded"' "$out/campaign.html"
echo "== done: $out/report.json, $out/report.md and the dashboard's page $out/campaign.html; everything started here is stopped on exit"
