#!/usr/bin/env bash
# The GPU rows of benchmarks/RESULTS.md in one run, each step under its own time limit and all of them
# under a global deadline, most important first.  Run from the repository root on a machine with CUDA:
#
#     OUT=gpu-results bash benchmarks/gpu.sh [SECONDS]
#
# SECONDS (default 480) is the deadline for the whole run.  Each step's output goes to $OUT/STEP.log.
set -u
out=${OUT:-gpu-results}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 KEOPS_VERBOSE=0 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python3}
deadline=$(( $(date +%s) + ${1:-480} ))

step() {  # step NAME LIMIT COMMAND...: run COMMAND for at most LIMIT seconds (less if the deadline is nearer)
    local name=$1 limit=$2 left
    shift 2
    left=$(( deadline - $(date +%s) ))
    (( left < limit )) && limit=$left
    if (( limit < 10 )); then
        echo "== $name: skipped, the deadline is reached" | tee "$out/$name.log"
        return
    fi
    echo "== $name (at most ${limit} s): $*"
    local start=$(date +%s)
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]} after $(( $(date +%s) - start )) s" | tee -a "$out/$name.log"
}

step env 60 "$python" -c '
import torch, numpy, scipy
print("torch", torch.__version__, "numpy", numpy.__version__, "scipy", scipy.__version__)
print("device", torch.cuda.get_device_name(0), "CPUs", torch.get_num_threads())
try:
    import pykeops, geomloss
    from pykeops.torch import LazyTensor
    x = torch.rand(1000, 3, device="cuda")
    d = ((LazyTensor(x[:, None, :]) - LazyTensor(x[None, :, :])) ** 2).sum(-1)
    print("pykeops", pykeops.__version__, "on the GPU:", float((-d).exp().sum(1).sum()))
except Exception as exc:
    print("pykeops unusable on the GPU:", type(exc).__name__, str(exc).splitlines()[:2])
'
step online 150 "$python" benchmarks/bench_online.py --device cuda --sizes 100000 --backends online keops geomloss-online --cap 40
step online-1e6 130 "$python" benchmarks/bench_online.py --device cuda --sizes 1000000 --backends online --cap 65
step multiscale-1e5 60 "$python" benchmarks/bench_multiscale.py large --n 100000 --eps 0.005 --device cuda
step neural 100 "$python" benchmarks/neural_accuracy.py --device cuda --seeds 1 --shape-seeds 0
step wgan 90 "$python" benchmarks/wgan_runs.py --device cuda --only 8gaussians-gp 25gaussians-gp --steps 500 --out /tmp/wgan-gpu
step multiscale-1e6 600 "$python" benchmarks/bench_multiscale.py large --n 1000000 --eps 0.005 --device cuda
