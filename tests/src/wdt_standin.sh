#!/bin/sh
# A WebLogic Deploy Tooling stand-in for patchfarm's tests (WDT needs a real WebLogic to run).
# Called as `standin.sh TOOL ARGS…` by bin/createDomain.sh, updateDomain.sh and deployApps.sh:
# checks its arguments like WDT, rejects what WDT rejects, and writes a domain laid out as WDT
# lays one out (config/config.xml with the model's names, security/SerializedSystemIni.dat
# random per run, servers/…, applications from archives under wlsdeploy/).
tool="$1"
shift
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$here/logs"
log="$here/logs/$tool.log"
echo "$tool $*" >"$log"
echo "WLSDEPLOY_PROPERTIES=$WLSDEPLOY_PROPERTIES" >>"$log"

fail() {
    echo "####<$tool> <SEVERE> <$1> <$2>" >&2
    echo "Issue Log for $tool version $(cat "$here/VERSION.txt")" >&2
    echo "Total:   SEVERE :    1  WARNING :    0" >&2
    exit "${3:-2}"
}

oracle_home= domain_home= domain_type=WLS models= variables= archives= encryption= rcu=
while [ $# -gt 0 ]; do
    case "$1" in
    -oracle_home | -domain_home | -domain_type | -model_file | -variable_file | -archive_file)
        [ $# -ge 2 ] || fail WLSDPLY-01000 "$1 needs a value"
        case "$1" in
        -oracle_home) oracle_home="$2" ;;
        -domain_home) domain_home="$2" ;;
        -domain_type) domain_type="$2" ;;
        -model_file) models="$2" ;;
        -variable_file) variables="$2" ;;
        -archive_file) archives="$2" ;;
        esac
        shift 2
        ;;
    -use_encryption) encryption=1 && shift ;;
    -run_rcu) rcu=1 && shift ;;
    *) fail WLSDPLY-01001 "$tool was given the unknown argument $1" ;;
    esac
done

[ -n "$oracle_home" ] || fail WLSDPLY-20008 "$tool requires the -oracle_home argument"
[ -d "$oracle_home/wlserver" ] || fail WLSDPLY-01004 "the -oracle_home $oracle_home is not a WebLogic Server installation"
[ -n "$JAVA_HOME" ] && [ -d "$JAVA_HOME" ] || fail WLSDPLY-20002 "JAVA_HOME ($JAVA_HOME) is not a directory"
[ -n "$domain_home" ] || fail WLSDPLY-20008 "$tool requires the -domain_home argument"
case "$domain_type" in
WLS | JRF | RestrictedJRF) ;;
*) fail WLSDPLY-12300 "the domain type $domain_type has no type definition file $oracle_home/../wdt/lib/typedefs/$domain_type.json" ;;
esac

# Comma-separated lists, as WIT passes them.
each() {
    old_ifs="$IFS"
    IFS=,
    set -- $1
    IFS="$old_ifs"
    for item in "$@"; do echo "$item"; done
}

for file in $(each "$models") $(each "$variables") $(each "$archives"); do
    [ -f "$file" ] || fail WLSDPLY-20006 "$tool could not find the file $file"
done
for model in $(each "$models"); do
    bad=$(grep -E '^[A-Za-z]' "$model" | sed 's/:.*//' | grep -v -x -E 'domainInfo|topology|resources|appDeployments|kubernetes' | head -n 1)
    [ -z "$bad" ] || fail WLSDPLY-05027 "model file $model: the model section $bad is not recognized (valid: domainInfo, topology, resources, appDeployments, kubernetes)"
    if grep -q '{AES' "$model" && [ -z "$encryption" ]; then
        fail WLSDPLY-04200 "model file $model holds encrypted values: give -use_encryption and the passphrase"
    fi
done

if [ -n "$encryption" ]; then
    passphrase=
    read -r passphrase || true
    [ -n "$passphrase" ] || fail WLSDPLY-04201 "-use_encryption was given and the passphrase read from standard input is empty"
fi

# The model's domain name and servers (WDT's defaults when it names none).
facts=$(cat /dev/null $(each "$models") | awk '
    /^topology:/ { t = 1; next }
    /^[A-Za-z]/ { t = 0; s = 0 }
    t && /^  Name:/ { v = $0; sub(/^  Name: */, "", v); gsub(/["\047]/, "", v); print "name " v }
    t && /^  Server:/ { s = 1; next }
    t && s && /^  [A-Za-z]/ { s = 0 }
    t && s && /^    [A-Za-z0-9_.-]+:/ { v = $1; sub(/:.*/, "", v); print "server " v }
')
name=$(echo "$facts" | awk '$1 == "name" { n = $2 } END { print n }')
[ -n "$name" ] || name=base_domain
servers=$(echo "$facts" | awk '$1 == "server" { print $2 }')
[ -n "$servers" ] || servers=AdminServer

config="$domain_home/config/config.xml"
add_to_config() {
    grep -v '^</domain>' "$config" >"$config.new"
    echo "$1" >>"$config.new"
    echo "</domain>" >>"$config.new"
    mv "$config.new" "$config"
}

deploy_archives() {
    for archive in $(each "$archives"); do
        unzip -o -q "$archive" 'wlsdeploy/*' -d "$domain_home" || fail WLSDPLY-01405 "archive $archive could not be extracted"
        for app in $(unzip -l "$archive" | awk '{ print $4 }' | grep '^wlsdeploy/applications/.' | sed 's#^wlsdeploy/applications/##; s#/.*##' | sort -u); do
            add_to_config "  <app-deployment><name>${app%.*}</name><source-path>wlsdeploy/applications/$app</source-path></app-deployment>"
        done
    done
}

case "$tool" in
createDomain)
    [ ! -e "$config" ] || fail WLSDPLY-12200 "the domain home $domain_home already holds a domain"
    mkdir -p "$domain_home/config" "$domain_home/security" "$domain_home/bin" "$domain_home/lib" || fail WLSDPLY-12201 "cannot create the domain home $domain_home"
    {
        echo '<?xml version="1.0" encoding="UTF-8"?>'
        echo '<domain>'
        echo "  <name>$name</name>"
        echo "  <domain-type>$domain_type</domain-type>"
        for server in $servers; do echo "  <server><name>$server</name></server>"; done
        echo '</domain>'
    } >"$config"
    for server in $servers; do mkdir -p "$domain_home/servers/$server/security"; done
    head -c 48 /dev/urandom >"$domain_home/security/SerializedSystemIni.dat"
    printf '#!/bin/sh\necho "Starting WebLogic Server for domain %s"\n' "$name" >"$domain_home/bin/startWebLogic.sh"
    chmod 750 "$domain_home/bin/startWebLogic.sh"
    [ -z "$rcu" ] || echo "RCU schemas created for $domain_type" >"$domain_home/config/rcu.txt"
    [ -z "$encryption" ] || echo "model decrypted with a passphrase of ${#passphrase} characters" >"$domain_home/config/encryption.txt"
    deploy_archives
    ;;
updateDomain | deployApps)
    [ -f "$config" ] || fail WLSDPLY-09015 "the domain home $domain_home holds no domain to update"
    if [ "$tool" = updateDomain ]; then
        for server in $servers; do
            grep -q "<name>$server</name>" "$config" || add_to_config "  <server><name>$server</name></server>"
            mkdir -p "$domain_home/servers/$server/security"
        done
    fi
    deploy_archives
    ;;
*) fail WLSDPLY-01002 "unknown tool $tool" ;;
esac
echo "$tool completed successfully (exit code = 0)"
