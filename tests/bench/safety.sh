#!/usr/bin/env bash
# The cost of issue 13's safety work, measured in one run: `patchfarm` built from REV (before the
# hostile-input work) and from this checkout build the real JDK's layer and rebase a domain on the
# fast path, interleaved; then this checkout meets the 64 GiB-sparse and 4 GiB-overlap JDKs with
# its peak RSS. Figures are printed, never asserted.
# Usage: tests/bench/safety.sh [REV]   (default 84c8386, the last commit before issue 13)
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:-84c8386}
old_src=${SAFETY_SRC:-target/safety/src}
old_target=${SAFETY_TARGET_DIR:-target/safety/target}
bash tests/deps.sh --bench
source tests/bench/rev.sh
echo "== building patchfarm at $rev (before) and this checkout (after), release" >&2
build_rev "$rev" "$old_src" "$old_target" -p patchfarm-cli
cargo build --release --locked -q -p patchfarm-cli -p patchfarm-e2e --bins
exec target/release/patchfarm-bench safety "$rev_bin/patchfarm" "$(pwd)/target/release/patchfarm"
