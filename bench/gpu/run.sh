#!/usr/bin/env bash
# E4B training and reading figures on a lent GPU, in one device call (README: "GPU figures").
#   bash bench/gpu/run.sh prepare         here: wheels into .whl/, size check, prints the device call
#   bash bench/gpu/run.sh device          there: what that call runs (installs the wheels, writes to $OUT)
#   bash bench/gpu/run.sh cpu-smoke DIR   here: the same benchmark end to end on a tiny model (CI runs it)
#   bash bench/gpu/run.sh profile ARGS... here: where a training step's time goes (bench/gpu/profile_step.py ARGS)
#   bash bench/gpu/run.sh device-profile ARGS...   there: the same after installing the wheels, writing to $OUT
# The one place a bare checkout (the GPU box installs no lipagent) finds the repository's modules: PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}"

install_wheels() {  # the GPU box has torch; everything else travels as wheels in .whl/ (bench/gpu/prepare.py)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PYTHONPATH" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
}

case "${1:-}" in
  prepare)
    exec "${PYTHON:-python3}" bench/gpu/prepare.py ;;
  device)
    out="${OUT:-gpu-bench-out}"
    mkdir -p "$out"
    install_wheels
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu_bench.log"
    python3 bench/gpu/bench_e4b.py --out "$out" 2>&1 | tee -a "$out/gpu_bench.log" ;;
  cpu-smoke)
    exec "${PYTHON:-python3}" bench/gpu/bench_e4b.py --cpu-smoke --out "${2:-gpu-bench-smoke}" ;;
  profile)
    shift
    exec "${PYTHON:-python3}" bench/gpu/profile_step.py "$@" ;;
  device-profile)
    shift
    install_wheels
    python3 bench/gpu/profile_step.py --out "${OUT:-gpu-profile-out}" "$@" ;;
  *)
    echo "usage: bash bench/gpu/run.sh prepare | device | cpu-smoke [DIR] | profile ARGS... | device-profile ARGS..." >&2
    exit 2 ;;
esac
