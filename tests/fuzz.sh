#!/usr/bin/env bash
# Runs the parsers' property tests (image references, cache keys, OPatch XML, Oracle Home
# registry, installer archives, campaign files) with many cases: PROPTEST_CASES per property
# (default 20000). tests/run.sh runs the same properties with 256 cases each.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-20000}"
started=$(date +%s%N)
PROPTEST_CASES="$cases" cargo nextest run --locked --no-fail-fast \
  -p patchfarm-engine -p patchfarm-cli \
  -E 'binary(parsers) | test(/properties::/)' 2>&1 | grep -E 'PASS|FAIL|Summary' >&2
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
properties=5
echo "fuzz: ${properties} properties x ${cases} cases = $((properties * cases)) inputs in ${elapsed_ms} ms (build included)"
