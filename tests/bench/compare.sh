#!/usr/bin/env bash
# Measures this checkout against an earlier commit in one run: the scheduling benchmark and the
# coordinator-cluster benchmark of each (old, then new, same machine, same minutes), then the
# release size of `patchfarm-agent` before and after. Figures are printed, never asserted.
# Usage: tests/bench/compare.sh [REV]   (default a5df8d4: the last commit before typed jobs)
# COMPARE_SRC / COMPARE_TARGET_DIR place the old checkout and its build (default under target/).
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:-a5df8d4}
old_src=${COMPARE_SRC:-target/compare/src}
old_target=${COMPARE_TARGET_DIR:-target/compare/target}
bash tests/deps.sh --bench

source tests/bench/rev.sh
echo "== building $rev (old) and this checkout (new), release" >&2
build_rev "$rev" "$old_src" "$old_target" --workspace --bins
cargo build --release --locked -q --workspace --bins
new_bin=$(pwd)/target/release
old_bin=$rev_bin

log=$(mktemp -d)
for mode in sched raft; do
  for side in old new; do
    bin=$old_bin
    [ "$side" = new ] && bin=$new_bin
    echo "== $mode, $side" >&2
    # `sched` goes on to the campaign benchmark; a failure there (or anywhere) is reported and
    # the figures printed before it still count.
    { PATCHFARM_BIN="$bin/patchfarm" "$bin/patchfarm-bench" "$mode" ||
        echo "!! patchfarm-bench $mode ($side) exited with status $?"; } | tee "$log/$mode-$side.txt"
  done
done

jobs_per_s() { sed -n 's/.* = \([0-9]*\) jobs\/s.*/\1/p' "$1" | head -n1; }
writes() { grep "^patchfarm, $2" "$1" | awk '{print $NF}' | head -n1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }'; }
stripped() { strip -o "$log/stripped" "$1" && stat -c %s "$log/stripped"; }

echo
echo "## This checkout against $rev (same run)"
echo
echo "| figure | $rev | this checkout | new / old |"
echo "|---|---|---|---|"
o=$(jobs_per_s "$log/sched-old.txt"); n=$(jobs_per_s "$log/sched-new.txt")
echo "| scheduling: jobs/s end to end | $o | $n | $(ratio "$o" "$n") |"
o=$(writes "$log/raft-old.txt" "SubmitJob x"); n=$(writes "$log/raft-new.txt" "SubmitJob x")
echo "| cluster: SubmitJob writes/s | $o | $n | $(ratio "$o" "$n") |"
o=$(writes "$log/raft-old.txt" "SubmitJobs of"); n=$(writes "$log/raft-new.txt" "SubmitJobs of")
echo "| cluster: SubmitJobs (batched) writes/s | $o | $n | $(ratio "$o" "$n") |"
o=$(stat -c %s "$old_bin/patchfarm-agent"); n=$(stat -c %s "$new_bin/patchfarm-agent")
echo "| patchfarm-agent release binary, bytes | $o | $n | $(ratio "$o" "$n") |"
o=$(stripped "$old_bin/patchfarm-agent"); n=$(stripped "$new_bin/patchfarm-agent")
echo "| patchfarm-agent stripped, bytes | $o | $n | $(ratio "$o" "$n") |"
rm -rf "$log"
