#!/usr/bin/env bash
# Builds the libtorch (CUDA) binaries here and packs what the CUDA machine needs into a
# git-ignored folder (default .device/) that the `device` tool can carry (64 MiB at most):
# `bundle.tar.gz` with stripped coca-cli, the coca-core test binary, the generation benchmark,
# the parity fixtures and cuda-env.sh. Run the checks there with examples/cuda/device.sh.
#
#   examples/cuda/bundle.sh [BUNDLE_DIR]
#
# Needs ../shared/scripts/libtorch.sh and ../shared/fixtures beside the checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=$root/../shared
out=${1:-$root/.device}
eval "$("$shared/scripts/libtorch.sh")"
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
mkdir -p "$stage/bin" "$stage/fixtures/tokenizer" "$stage/scripts"
cp "$CARGO_TARGET_DIR/release/coca-cli" "$stage/bin/coca-cli"
cp "$CARGO_TARGET_DIR/release/examples/bench_generation" "$stage/bin/bench_generation"
cp "$core_test" "$stage/bin/core-tests"
strip "$stage/bin/"*
cp -r "$shared/fixtures/coca-tiny" "$stage/fixtures/"
cp "$shared/fixtures/tokenizer/tokenizer.json" "$stage/fixtures/tokenizer/"
cp "$shared/scripts/cuda-env.sh" "$stage/scripts/"
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
