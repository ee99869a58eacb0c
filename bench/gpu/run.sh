#!/usr/bin/env bash
# Gemma 3n E4B training and reading figures on one CUDA GPU, in one command (docs/gpu.md).
#   bash bench/gpu/run.sh                      on a CUDA machine with `pip install -e .` done: the figures into $OUT
#   bash bench/gpu/run.sh offline              on a CUDA machine without a package index: installs .whl/ first
#   bash bench/gpu/run.sh device               either of the two: installs .whl/ first where the checkout has one
#   bash bench/gpu/run.sh wheels               gather .whl/ for such a machine (Python 3.12, manylinux x86_64)
#   bash bench/gpu/run.sh cpu-smoke DIR        the same benchmark end to end on the tiny model, on a CPU (a test)
#   bash bench/gpu/run.sh profile ARGS...      where a training step's time goes (bench/gpu/profile_step.py ARGS)
#   bash bench/gpu/run.sh offline-profile ARGS...   the same after installing .whl/
# $OUT defaults to gpu-bench-out (gpu-profile-out for a profile). The one place a bare checkout finds the repository's modules: PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}"

install_wheels() {  # torch comes with the machine; everything else from .whl/ (bench/gpu/wheels.py)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
}

measure() {
    local out="$1"
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu_bench.log"
    python3 bench/gpu/bench_e4b.py --out "$out" 2>&1 | tee -a "$out/gpu_bench.log"
}

case "${1:-}" in
  "")
    measure "${OUT:-gpu-bench-out}" ;;
  offline)
    install_wheels
    measure "${OUT:-gpu-bench-out}" ;;
  device)
    if compgen -G ".whl/*.whl" > /dev/null; then install_wheels; fi
    measure "${OUT:-gpu-bench-out}" ;;
  wheels)
    exec "${PYTHON:-python3}" bench/gpu/wheels.py ;;
  cpu-smoke)
    exec "${PYTHON:-python3}" bench/gpu/bench_e4b.py --cpu-smoke --out "${2:-gpu-bench-smoke}" ;;
  profile)
    shift
    exec "${PYTHON:-python3}" bench/gpu/profile_step.py "$@" ;;
  offline-profile)
    shift
    install_wheels
    python3 bench/gpu/profile_step.py --out "${OUT:-gpu-profile-out}" "$@" ;;
  *)
    echo "usage: bash bench/gpu/run.sh | offline | device | wheels | cpu-smoke [DIR] | profile ARGS... |" \
         "offline-profile ARGS..." >&2
    exit 2 ;;
esac
