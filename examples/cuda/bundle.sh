#!/usr/bin/env bash
# Builds the libtorch (CUDA) binaries here and packs what the CUDA machine needs into a
# git-ignored folder (default .device/) that the `device` tool can carry (64 MiB at most):
# `bundle.tar.gz` with stripped coca-cli, the coca-core test binary, the generation benchmark,
# the parity fixtures and cuda-env.sh. Run the checks there with examples/cuda/device.sh.
#
#   examples/cuda/bundle.sh [BUNDLE_DIR]
#
# Needs LIBTORCH set to a CUDA libtorch (LIBTORCH_BYPASS_VERSION_CHECK=1 for one newer than
# tch's), or a `libtorch.sh` that prints those settings: $COCA_LIBTORCH_SH, default
# ../shared/scripts/libtorch.sh beside the checkout (on the project's machines); its
# `cuda-env.sh` beside it, or $COCA_CUDA_ENV_SH, goes into the bundle for the CUDA machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/.device}
libtorch_sh=${COCA_LIBTORCH_SH:-$root/../shared/scripts/libtorch.sh}
cuda_env_sh=${COCA_CUDA_ENV_SH:-$(dirname "$libtorch_sh")/cuda-env.sh}
if [ -z "${LIBTORCH:-}" ]; then
  if [ ! -x "$libtorch_sh" ]; then
    echo "error: set LIBTORCH (or COCA_LIBTORCH_SH to a script printing it)" >&2
    exit 1
  fi
  eval "$("$libtorch_sh")"
fi
if [ ! -f "$cuda_env_sh" ]; then
  echo "error: $cuda_env_sh is missing (set COCA_CUDA_ENV_SH)" >&2
  exit 1
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_LIBTORCH:-$HOME/.cache/coca/target-tch}
cd "$root"
cargo build --release -p coca-cli --features coca-cli/libtorch
cargo build --release -p coca-core --example bench_generation --features coca-core/libtorch
core_test=$(cargo test --release --no-run -p coca-core --features coca-core/libtorch --test core \
  --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "core" and m.get("executable"):
        print(m["executable"])')
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/fixtures" "$stage/scripts"
cp "$CARGO_TARGET_DIR/release/coca-cli" "$stage/bin/coca-cli"
cp "$CARGO_TARGET_DIR/release/examples/bench_generation" "$stage/bin/bench_generation"
cp "$core_test" "$stage/bin/core-tests"
strip "$stage/bin/"*
cp -r "$root/tests/fixtures/coca-tiny" "$root/tests/fixtures/tokenizer" "$stage/fixtures/"
cp "$cuda_env_sh" "$stage/scripts/cuda-env.sh"
rm -rf "$out"
mkdir -p "$out"
tar -C "$stage" -czf "$out/bundle.tar.gz" .
du -sh "$out" >&2
size=$(du -sm "$out" | cut -f1)
if [ "$size" -gt 63 ]; then
  echo "error: $out is $size MiB; the device tool carries 64 MiB at most" >&2
  exit 1
fi
echo "carry: ${out#"$root"/}" >&2
