"""Stage 1's training step captured in a CUDA graph and replayed: the step without its launch overhead.

A small teacher's fused stage-1 step is bound by the host, not the GPU: ~1,500 kernel launches from Python
(HF's layers, autocast's casts, LAWCAT's elementwise ops), each costing more CPU time than its kernel takes on
the device (2026-12-01 profile: ~64 ms of kernels in a 120 ms step; results/stage1-throughput/). A CUDA graph
records the whole forward and backward once per batch shape and replays it with one launch.

What a replay needs, and how this module provides it:
- fixed shapes: each batch is padded (on the device) to a multiple of `pad_multiple` tokens; one graph per
  padded shape, all sharing one memory pool;
- fixed addresses: the batch and the token count are copied into the graph's own input tensors, and the
  gradients the replay writes are handed back to the parameters after each replay (the trainer sets them to
  None before a step);
- no host syncs inside: the batches are right-padded (stage1._embed runs unmasked), and lawcat's Triton kernel
  takes a fixed 16-row chunk with a device-side range flag (lawcat.ops.triton_norm_gla.deferred_range_checks).
  A replay whose flag is set (a gate stronger than |g| = 10 somewhere) is redone from a graph of the exact kernel
  (fla's), which then serves every later step, so a replay never returns a wrong result silently.
Validation (no backward) and shapes beyond `max_graphs` run eagerly.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial

import torch

from ..models.errors import LawcatError
from ..ops.triton_norm_gla import deferred_range_checks
from .stage1 import attention_transfer_step


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_count: torch.Tensor
    loss: torch.Tensor
    grads: list
    out_of_range: torch.Tensor | None  # device bool: some gate was too strong for the captured chunk


class GraphedStage1:
    """A drop-in stage-1 loss function, `(batch, token_count, backward) -> loss`, for one CUDA device.

    params: the trained parameters (their .grad is what a replay writes); pad_id: the token that fills the padding
    added to reach a graph's shape; warmup: eager steps run before each capture (they compile kernels and
    initialise the libraries' workspaces; their gradients are discarded, no optimizer step sees them)."""

    def __init__(self, student, params, mse_weight: float, autocast=contextlib.nullcontext, pad_id: int = 0,
                 pad_multiple: int = 64, max_graphs: int = 4, warmup: int = 2, chunk: int = 16):
        params = list(params)
        device = params[0].device
        if device.type != "cuda":
            raise LawcatError(f"stage1.cuda_graph needs a CUDA device; the student is on {device}")
        self.student, self.params, self.mse_weight = student, params, mse_weight
        # Autocast's cast cache would hand the graph casts made outside it; casting inside the graph is the same
        # arithmetic. (The argument is the recipe's autocast factory, a partial of torch.autocast or a null one.)
        self.autocast = partial(autocast, cache_enabled=False) if autocast is not contextlib.nullcontext else autocast
        self.pad_id, self.pad_multiple, self.max_graphs = pad_id, pad_multiple, max_graphs
        self.warmup, self.chunk = warmup, chunk
        self.graphs: dict[tuple, _Graph] = {}
        self.pool = torch.cuda.graph_pool_handle()
        self.replays = self.eager_steps = self.redone = 0  # counters for the summary and the tests
        # exact: replay graphs whose GLA runs through fla's unfactored kernels (no range limit) instead of lawcat's
        # Triton kernel; set at the first out-of-range replay (exact_since: the replay count then).
        self.exact, self.exact_since = False, None

    def _step(self, batch, token_count, backward=True):
        return attention_transfer_step(self.student, batch, self.mse_weight, token_count, self.autocast, backward,
                                       layer_group=0, right_padded=True)

    def eager(self, batch, token_count, backward=True):
        self.eager_steps += 1
        return self._step(batch, token_count, backward)

    def __call__(self, batch: dict, token_count, backward: bool = True) -> torch.Tensor:
        if not backward:
            return self._step(batch, token_count, backward=False)
        entry = self._entry(batch, token_count)
        if entry is None:
            return self.eager(batch, token_count)
        self._replay(entry, batch, token_count)
        if entry.out_of_range is not None and bool(entry.out_of_range):  # the one read-back of the step
            # Gates have outgrown the captured chunk. On 2026-12-02 (eager redo per flagged step) 25-67 % of the
            # passkey runs' stage-1 steps were flagged, so from now on every step replays a graph of the exact
            # kernel instead (fla's, 0.095 s per step there against 0.068 + an eager redo of ~0.09 s per flag);
            # this step is redone there. The chunked graphs are dropped: they would not be replayed again.
            self.redone += 1
            self.exact, self.exact_since = True, self.replays
            self.graphs = {key: g for key, g in self.graphs.items() if key[2]}
            entry = self._entry(batch, token_count)
            if entry is None:
                for p in self.params:
                    p.grad = None
                return self.eager(batch, token_count)
            self._replay(entry, batch, token_count)
        for p, g in zip(self.params, entry.grads):
            p.grad = g
        return entry.loss.clone()

    def _entry(self, batch, token_count) -> _Graph | None:
        """The graph for this batch's padded shape (captured on first use), or None past max_graphs."""
        B, T = batch["input_ids"].shape
        key = (B, -(-T // self.pad_multiple) * self.pad_multiple, self.exact)
        if key not in self.graphs:
            if len(self.graphs) >= self.max_graphs:
                return None
            self._capture(batch, token_count, key)
        return self.graphs[key]

    def _replay(self, entry: _Graph, batch, token_count) -> None:
        self._load(entry, batch["input_ids"], batch["attention_mask"], token_count)
        entry.graph.replay()
        self.replays += 1

    def release(self) -> None:
        """Free the graphs and their memory pool (all of stage 1's activations), e.g. before stage 2 starts; the
        parameters' gradients, which live in that pool, are dropped."""
        for p in self.params:
            p.grad = None
        self.graphs.clear()
        self.pool = torch.cuda.graph_pool_handle()
        torch.cuda.empty_cache()

    def _load(self, entry: _Graph, ids, mask, token_count) -> None:
        T = ids.shape[1]
        entry.input_ids[:, :T].copy_(ids)
        entry.input_ids[:, T:].fill_(self.pad_id)
        entry.attention_mask[:, :T].copy_(mask)
        entry.attention_mask[:, T:].zero_()
        entry.token_count.fill_(float(token_count))

    def _capture(self, batch: dict, token_count, key: tuple) -> None:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        B, L, exact = key
        static = dict(input_ids=torch.empty(B, L, dtype=ids.dtype, device=ids.device),
                      attention_mask=torch.empty(B, L, dtype=mask.dtype, device=mask.device),
                      token_count=torch.empty((), dtype=torch.float32, device=ids.device))
        entry = _Graph(None, **static, loss=None, grads=[], out_of_range=None)
        self._load(entry, ids, mask, token_count)
        inputs = {"input_ids": entry.input_ids, "attention_mask": entry.attention_mask}
        # Warm-up on a side stream (as torch.cuda.graphs asks): Triton compiles, cuBLAS/cuDNN pick their kernels.
        cfg = self.student.config
        backend = cfg.gla_backend
        if exact:  # the layers read the backend from the shared config at each call: set it for the capture only
            cfg.gla_backend = "fla"
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    for p in self.params:
                        p.grad = None
                    with deferred_range_checks(self.chunk):
                        self._step(inputs, entry.token_count)
            torch.cuda.current_stream().wait_stream(side)
            for p in self.params:
                p.grad = None
            graph = torch.cuda.CUDAGraph()
            with deferred_range_checks(self.chunk) as flags, torch.cuda.graph(graph, pool=self.pool):
                loss = self._step(inputs, entry.token_count)
                bad = torch.stack(flags).any() if flags else None
        finally:
            cfg.gla_backend = backend
        if exact and bad is not None:  # the exact kernel has no range flag; one here means it did not take effect
            raise LawcatError("the exact stage-1 graph still went through lawcat's Triton kernel; "
                              "set stage1.cuda_graph=false")
        missing = [i for i, p in enumerate(self.params) if p.grad is None]
        if missing:
            raise LawcatError(f"the captured stage-1 step leaves {len(missing)} trained parameter(s) without a "
                              "gradient; they are not used by the fused step")
        entry.graph, entry.loss, entry.out_of_range = graph, loss, bad
        entry.grads = [p.grad for p in self.params]
        self.graphs[key] = entry
