import os

import torch

# Triton reads TRITON_INTERPRET when a kernel is decorated, so it must be set before
# torchrl_grasp.ops._triton is imported. Without a GPU the interpreter runs the kernels
# on CPU tensors, which is how CI checks them.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
