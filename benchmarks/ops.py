"""Forward + backward time of the fused collocation loss against the pure-PyTorch reference.

Prints a markdown table: median time of one forward+backward for each (B, T, D), and
the ratio op / reference (below 1 means the fused op is faster). Both are measured
side by side in one run, so the ratio holds even on a busy machine.

    python benchmarks/ops.py                 # the full grid
    python benchmarks/ops.py --quick         # a small grid, seconds
    python benchmarks/ops.py --device cuda   # the Triton kernels, where a GPU is present
"""

from __future__ import annotations

import argparse
import itertools

import torch
from torch.utils import benchmark

from torchrl_grasp.ops import collocation_loss, collocation_loss_reference


def forward_backward(loss_fn, pred, next_states, goal, weights):
    loss = loss_fn(pred, next_states, goal, 1.0, weights)
    loss.sum().backward()


def median_seconds(loss_fn, inputs, min_run_time):
    timer = benchmark.Timer(
        stmt="forward_backward(loss_fn, *inputs)",
        globals={"forward_backward": forward_backward, "loss_fn": loss_fn, "inputs": inputs},
        num_threads=torch.get_num_threads(),  # Timer defaults to 1 thread; time what the header says
    )
    return timer.blocked_autorange(min_run_time=min_run_time).median


def make_inputs(batch, steps, dim, device, dtype):
    def rand(*shape):
        return torch.randn(*shape, device=device, dtype=dtype, requires_grad=True)

    weights = torch.rand(steps, device=device, dtype=dtype)
    return rand(batch, steps, dim), rand(batch, steps, dim), rand(batch, dim), weights


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 32, 256, 4096])
    parser.add_argument("--horizons", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds of timing per cell and side")
    parser.add_argument("--quick", action="store_true", help="a small grid with short timings")
    args = parser.parse_args(argv)
    if args.quick:
        args.dims, args.horizons, args.batches, args.min_run_time = [4, 256], [16], [1], 0.05
    dtype = getattr(torch, args.dtype)

    print(f"torch {torch.__version__}, device {args.device}, dtype {args.dtype}, threads {torch.get_num_threads()}")
    print("| B | T | D | fused op (ms) | reference (ms) | op / reference |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = []
    for batch, steps, dim in itertools.product(args.batches, args.horizons, args.dims):
        inputs = make_inputs(batch, steps, dim, args.device, dtype)
        fused = median_seconds(collocation_loss, inputs, args.min_run_time)
        reference = median_seconds(collocation_loss_reference, inputs, args.min_run_time)
        rows.append(dict(batch=batch, steps=steps, dim=dim, fused_s=fused, reference_s=reference))
        print(f"| {batch} | {steps} | {dim} | {fused * 1e3:.3f} | {reference * 1e3:.3f} | {fused / reference:.2f} |")
    return rows


if __name__ == "__main__":
    main()
