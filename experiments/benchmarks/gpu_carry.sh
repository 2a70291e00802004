#!/usr/bin/env bash
# What gpu_check.sh needs on a GPU machine without a network whose python3 (3.12) already
# holds torch, numba and numba-cuda: the few pure-Python wheels snnrun's benchmark path
# imports besides (hydra-core, omegaconf, antlr4) into .whl/, and MNIST's four files into
# .gpu_data/MNIST/raw (both git-ignored; carry them).  Run here, where PyPI is reachable.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir -p .whl .gpu_data/MNIST/raw
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  "hydra-core==1.3.2" "omegaconf==2.3.0"
python3 -m pip wheel -q --no-deps -w .whl "antlr4-python3-runtime==4.9.3"   # an sdist on PyPI: built here, pure Python
cp "${SNNRUN_DATA_DIR:-../shared/data}"/MNIST/raw/*.gz .gpu_data/MNIST/raw/
du -sh .whl .gpu_data
