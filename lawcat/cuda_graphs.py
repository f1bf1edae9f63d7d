"""CUDA-graph capture in one place (torch.cuda.graphs' recipe), for the three users of graphs: the training step
(lawcat.distill.graph_step), the student's decode step (lawcat.models.graph_decode) and the teacher's static-cache
decode step that benchmarks compare against (lawcat.bench.teacher_decode).

Kernels must be compiled, autotuned and their libraries' workspaces allocated before a capture, and that warm-up
has to run on a side stream so the capture's stream sees no unfinished work of its own.
"""
from __future__ import annotations

import torch

__all__ = ["capture", "warm_up_on_side_stream"]


def warm_up_on_side_stream(fn, times: int) -> None:
    """Run fn() `times` times on a fresh side stream, then make the current stream wait for it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(times):
            fn()
    torch.cuda.current_stream().wait_stream(side)


def capture(fn, warmup: int = 2, pool=None, warm_fn=None, before_capture=None):
    """(graph, output): `warm_fn` (default fn) run `warmup` times on a side stream, `before_capture()` if given,
    then one call of fn() recorded in a CUDA graph (in memory pool `pool` when given). The output's tensors are
    the graph's: each replay rewrites them in place."""
    warm_up_on_side_stream(warm_fn or fn, warmup)
    if before_capture is not None:
        before_capture()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = fn()
    return graph, out
