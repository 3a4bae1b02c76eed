#!/usr/bin/env bash
# Source this to run a `--features libtorch` build on a machine WITHOUT a GPU (device
# `libtorch-cpu`): libtorch 2.11's libraries link against the CUDA 13 runtime, cuBLAS, cuDNN,
# NCCL... even when they run on the CPU. The first use fetches those libraries once from PyPI
# (about 2.3 GiB) next to the libtorch of ../shared/scripts/libtorch.sh; no driver is needed.
#
#   source examples/cuda/cpu-env.sh
#   COCA_BUNDLE=... COCA_DEVICE=libtorch-cpu OUT=/tmp/out examples/cuda/device.sh parity
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
eval "$("$_root/../shared/scripts/libtorch.sh")"
_nv=$LIBTORCH/../nv
if [ ! -f "$_nv/nvidia/cu13/lib/libcudart.so.13" ]; then
  python3 -m pip install -q --no-deps --target "$_nv" \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 nvidia-cublas nvidia-cufft \
    nvidia-cufile nvidia-curand nvidia-cusparse nvidia-nvjitlink==13.0.88 \
    nvidia-cudnn-cu13==9.19.0.56 nvidia-cusparselt-cu13==0.8.0 nvidia-nccl-cu13==2.27.7 \
    nvidia-nvshmem-cu13==3.4.5 >&2
fi
_libs=$LIBTORCH/lib
for d in cu13 cudnn cusparselt nccl nvshmem; do _libs=$_libs:$_nv/nvidia/$d/lib; done
export LD_LIBRARY_PATH="$_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset _root _nv _libs d
