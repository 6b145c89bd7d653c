# Sourced by the comparing benchmarks: `build_rev REV SRC TARGET CARGO-ARGS...` checks REV out in
# a worktree at SRC (once) and builds it release into TARGET; sets $rev_bin to its binaries.
build_rev() {
  local rev=$1 src=$2 target=$3
  shift 3
  if [ ! -e "$src/Cargo.toml" ]; then
    git worktree add --force --detach "$src" "$rev" >/dev/null
  fi
  src=$(cd "$src" && pwd)
  mkdir -p "$target"
  target=$(cd "$target" && pwd)
  (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release --locked -q "$@")
  rev_bin=$target/release
}
