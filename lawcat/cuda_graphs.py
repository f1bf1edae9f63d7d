"""The warm-up a CUDA-graph capture needs, in one place (torch.cuda.graphs' recipe).

Kernels must be compiled, autotuned and their libraries' workspaces allocated before a capture, and that warm-up
has to run on a side stream so the capture's stream sees no unfinished work of its own.
"""
from __future__ import annotations

import torch


def warm_up_on_side_stream(fn, times: int) -> None:
    """Run fn() `times` times on a fresh side stream, then make the current stream wait for it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(times):
            fn()
    torch.cuda.current_stream().wait_stream(side)
