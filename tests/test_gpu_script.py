"""``benchmarks/gpu.sh`` runs unchanged on a CPU (``DEVICE=cpu QUICK=1``) and writes its report:
the op's table, every table of ``planner_speed.py`` and a benchmark cell. On a GPU the same script runs on ``cuda``."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_cpu_path_writes_the_report(tmp_path):
    report = tmp_path / "report.md"
    environment = os.environ | {
        "DEVICE": "cpu", "QUICK": "1", "PYTHON": sys.executable, "TORCHRL_GRASP_CACHE": str(tmp_path / "cache")
    }
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(report)],
        env=environment, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = report.read_text()
    assert "| op / reference |" in text  # the fused op against the reference
    for table in ("| loop/iteration |", "| serial fallbacks |", "| past / sync step |", "| eager / compiled |"):
        assert table in text, f"the report lacks planner_speed's table with {table}"
    assert "| H | grasp | grasp-parallel-sync | icem | cem |" in text  # the benchmark cell's table


def test_gpu_script_refuses_a_machine_without_cuda(tmp_path):
    environment = os.environ | {"DEVICE": "cuda", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(tmp_path / "report.md")],
        env=environment, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode != 0 and "torch sees no CUDA device" in done.stderr
    assert not (tmp_path / "report.md").exists()
