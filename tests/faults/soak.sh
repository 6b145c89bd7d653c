#!/usr/bin/env bash
# Many fault schedules: tests/faults/soak.sh N [FIRST] runs seeds FIRST..FIRST+N-1 (FIRST
# defaults to a random one, printed) on one compose deployment, as tests/faults/ci.sh does for
# three. A failing seed is reproduced with tests/faults/ci.sh --seeds SEED.
set -euo pipefail
n=${1:?usage: tests/faults/soak.sh N [FIRST]}
first=${2:-$((RANDOM + 4))}
echo "soak: seeds $first..$((first + n - 1))" >&2
exec bash "$(dirname "$0")/ci.sh" --no-broken --seeds "$(seq -s, "$first" "$((first + n - 1))")"
