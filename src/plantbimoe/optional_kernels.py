"""Kernel modules behind an optional dependency (numba, Triton), imported on first use only."""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType


@cache
def load(module: str) -> ModuleType | ImportError:
    """The imported module, or the ImportError that its missing dependency raised (kept, not raised,
    so that `available` can answer and `require` can say why)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        return err


def available(module: str) -> bool:
    """True when `module` imports."""
    return not isinstance(load(module), ImportError)


def require(module: str, backend: str, install: str) -> ModuleType:
    """The kernel module, or a RuntimeError naming the backend, the import error and `install`."""
    kernels = load(module)
    if isinstance(kernels, ImportError):
        raise RuntimeError(f"the {backend!r} scan backend needs {install} ({kernels})") from kernels
    return kernels
