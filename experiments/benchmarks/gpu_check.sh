#!/usr/bin/env bash
# One prepared GPU check (issue 21), one command, ~8 minutes on a fresh GPU machine:
# set up, run the CUDA kernels' tests on the device, then bench_gpu.py (diehl_cook_bindsnet
# at 100/400/1600 neurons for backend cuda, torch and compile; the LIF benchmark at
# n = 10000; the full 400-neuron epoch with test), all written under OUT_DIR.
#
#   bash experiments/benchmarks/gpu_check.sh [OUT_DIR]     (default: $OUT, else experiments/benchmarks/results)
#
# Setup: with PyPI reachable, a venv with `pip install -e ".[test,cuda]"`.  Without a network
# (a lent machine whose python3 already holds torch and numba-cuda): the wheels and MNIST
# that experiments/benchmarks/gpu_carry.sh put into .whl/ and .gpu_data/ (carry both).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=${1:-${OUT:-experiments/benchmarks/results}}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
  python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
  PY=python3
else
  python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e ".[test,cuda]"
  PY=.venv-gpu/bin/python
fi
if [ -z "${SNNRUN_DATA_DIR:-}" ]; then
  if [ -d .gpu_data ]; then SNNRUN_DATA_DIR=$PWD/.gpu_data; else SNNRUN_DATA_DIR=$PWD/../shared/data; fi
fi
export SNNRUN_DATA_DIR
git rev-parse HEAD > "$OUT_DIR/gpu_check_commit.txt" 2>/dev/null || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$OUT_DIR/gpu_check_device.txt" || true
status=0
# the CUDA kernels against the torch reference, on the device (no simulator when a GPU is there)
timeout 200 $PY -m pytest -q -p no:cacheprovider tests/equivalence/test_cuda.py 2>&1 | tee "$OUT_DIR/gpu_check_tests.txt" || status=1
timeout 360 $PY experiments/benchmarks/bench_gpu.py --epoch --budget-s 5 --json "$OUT_DIR/gpu_check.json" 2>&1 \
  | tee "$OUT_DIR/gpu_check_bench.txt" || status=1
exit $status
