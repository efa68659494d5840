"""Scan tests: without CUDA, the Triton kernels run in Triton's interpreter on CPU tensors.

Triton reads TRITON_INTERPRET when a kernel is defined (the first use of the ``triton`` backend),
so it is set here, before any test runs.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
