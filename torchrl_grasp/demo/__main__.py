"""``python -m torchrl_grasp.demo``: see :mod:`torchrl_grasp.demo`."""

from torchrl_grasp.demo.cli import main

if __name__ == "__main__":
    main()
