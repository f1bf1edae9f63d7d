"""What lawcat's Triton kernels share before a launch: is triton there, is its CPU interpreter on, block sizes.

Imports no triton itself (`triton_available` tries), so the CPU-only install can import every ops module.
"""
from __future__ import annotations

import os

__all__ = ["cdiv", "interpreting", "next_pow2", "triton_available", "usable"]


def triton_available() -> bool:
    """True when triton imports (kernels still need a CUDA device or TRITON_INTERPRET=1)."""
    try:
        import triton  # noqa: F401
    except Exception:  # pragma: no cover - depends on the machine
        return False
    return True


def interpreting() -> bool:
    """TRITON_INTERPRET=1: Triton kernels run on CPU tensors through triton's interpreter (the kernels' CPU tests)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def usable(x) -> bool:
    """Whether a lawcat Triton kernel can serve tensor x here: CUDA (or the interpreter) and triton importable."""
    return (x.is_cuda or interpreting()) and triton_available()


def next_pow2(n: int) -> int:
    """The block size that holds `n` (a power of two, at least 16: tl.dot's smallest tile)."""
    return 1 << max(4, (int(n) - 1).bit_length())


def cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b
