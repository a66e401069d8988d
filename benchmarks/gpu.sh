#!/usr/bin/env bash
# The package's speed benchmarks on a CUDA GPU, written to one markdown report:
#   1. the fused collocation op against its PyTorch reference, Triton kernels compiled (not interpreted);
#   2. benchmarks/planner_speed.py on the GPU: iterations against the floor and the per-step loop,
#      the sync's share with GDSync and ParallelGDSync, deadlines, full plans against CEM, eager
#      against compiled;
#   3. a short benchmark cell on the GPU: WallDoor at H=80, GRASP, GRASP with the parallel sync,
#      iCEM and CEM under a 1 s deadline each, 16 episodes, judged in the real env (the model is
#      trained, or loaded from $TORCHRL_GRASP_CACHE, first: about a minute).
#
#   bash benchmarks/gpu.sh [REPORT.md]               # on a machine with CUDA (and triton installed)
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu.sh r.md   # the same script on CPU, tiny grids (its test)
#
# PYTHON picks the interpreter (default .venv/bin/python). Paste the report into docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPORT=${1:-gpu-report.md}
PYTHON=${PYTHON:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
QUICK_FLAG=()
if [ "${QUICK:-0}" = 1 ]; then QUICK_FLAG=(--quick); fi
unset TRITON_INTERPRET  # the kernels compiled for the GPU, as users run them

case "$DEVICE" in cuda*)
    "$PYTHON" - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu.sh: torch sees no CUDA device; run it on a GPU machine, or DEVICE=cpu for the CPU path.")
try:
    import triton  # noqa: F401
except ImportError:
    sys.exit("gpu.sh: triton is not installed, so the op would not use its kernels: pip install -e '.[triton]'.")
PY
    ;;
esac
PARTIAL="$REPORT.partial"  # the report appears whole, or not at all

{
    echo "# Speed on ${DEVICE} ($(date -u +%Y-%m-%d))"
    echo
    "$PYTHON" -c "
import torch
name = torch.cuda.get_device_name() if '$DEVICE'.startswith('cuda') else 'cpu'
print(f'torch {torch.__version__}, {name}')"
    echo
    echo "## The fused collocation op against the reference (python benchmarks/ops.py --device ${DEVICE})"
    echo
    "$PYTHON" benchmarks/ops.py --device "$DEVICE" "${QUICK_FLAG[@]}"
    echo
    echo "## Planner speed (python benchmarks/planner_speed.py --device ${DEVICE})"
    echo
    "$PYTHON" benchmarks/planner_speed.py --device "$DEVICE" "${QUICK_FLAG[@]}"
    echo
    echo "## A benchmark cell (python -m torchrl_grasp.benchmark --device ${DEVICE})"
    echo
    CELL=$(mktemp -d)
    "$PYTHON" -m torchrl_grasp.benchmark --env walldoor --horizons 80 --episodes 16 --budget 1.0 \
        --planners grasp grasp-parallel-sync icem cem --device "$DEVICE" --out "$CELL" "${QUICK_FLAG[@]}" > "$CELL/log.txt"
    cat "$CELL/results.md"
    rm -rf "$CELL"
} > "$PARTIAL"
mv "$PARTIAL" "$REPORT"
echo "gpu.sh: wrote $REPORT"
