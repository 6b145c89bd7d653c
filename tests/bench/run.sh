#!/usr/bin/env bash
# Benchmarks patchfarm against gzip/pigz (layer build) and skopeo (push), printing figures and
# ratios measured in the same run, then the coordinator cluster against etcd.
# Usage: tests/bench/run.sh [JDK_DIR] | tests/bench/run.sh raft | sched | fleet | rebase | dashboard | campaign | steps | wdt | sign
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/deps.sh --bench
cargo build --release --locked -q -p patchfarm-cli -p patchfarm-coordinator -p patchfarm-agent -p patchfarm-e2e --bins
PATCHFARM_BIN="$(pwd)/target/release/patchfarm" exec target/release/patchfarm-bench "$@"
