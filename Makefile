# Two commands set a fresh machine up: `make demo` and `make test`.
# torch is installed first and pinned, so that nothing pulls another (CUDA) build.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
# pusht (gym-pusht: pymunk, pygame, opencv-python, shapely; all wheels) lets `make test` run the
# Push-T tests instead of skipping them: about 40 s more on one core. robotics (gymnasium-robotics,
# mujoco) runs the PointMaze tests of the generic gymnasium path.
EXTRAS ?= test,triton,docs,pusht,robotics

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(BIN)/torchrl-grasp demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/ops.py

clean:
	rm -rf $(VENV) build *.egg-info
