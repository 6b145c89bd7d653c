#!/usr/bin/env bash
# Runs every patchfarm test: installs what the tests need, checks formatting and lints,
# builds the workspace once, runs all test binaries (unit and end-to-end) with nextest, then the
# compose deployment and the fault suite on it (tests/faults/ci.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/deps.sh

# A clean CI clone builds once: incremental caches would only double the target's size on disk.
if [[ "${CI:-}" == "true" ]]; then export CARGO_INCREMENTAL=0; fi
echo "== disk free before building: $(df -h --output=avail . | tail -1 | tr -d ' ')" >&2

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check

echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== build (once; every test binary reuses it)" >&2
cargo build --workspace --all-targets --locked

echo "== tests (target is $(du -sh target 2>/dev/null | cut -f1); $(df -h --output=avail . | tail -1 | tr -d ' ') free)" >&2
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== compose deployment and fault suite (tests/faults/ci.sh)" >&2
bash tests/faults/ci.sh
