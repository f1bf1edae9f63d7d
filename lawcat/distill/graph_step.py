"""A training step captured in a CUDA graph and replayed: the step without its launch overhead.

A small teacher's training step is bound by the host, not the GPU: ~1,500 kernel launches from Python (HF's
layers, autocast's casts, LAWCAT's elementwise ops), each costing more CPU time than its kernel takes on the
device (a profile of stage 1 found ~64 ms of kernels in a 120 ms step; results/stage1-throughput/). A CUDA
graph records the whole forward and backward once per batch shape and replays it with one launch.
Stage 1 (lawcat.distill.stage1_graph) and stage 2 (lawcat.distill.stage2) bind it to their losses.

What a replay needs, and how this module provides it:
- fixed shapes: each batch is padded (on the device) to a multiple of `pad_multiple` tokens, each tensor with its
  own pad value (token, mask 0, label -100); one graph per padded shape, all sharing one memory pool;
- fixed addresses: the batch and the token count are copied into the graph's own input tensors, and the
  gradients the replay writes are handed back to the parameters after each replay (the trainer sets them to
  None before a step); a parameter that already holds a gradient (gradient accumulation: an earlier
  micro-batch's) gets the sum instead, kept outside the graph's pool, which the next replay overwrites;
- no host syncs inside: `graph_fn` must be sync-free (the stages' versions rely on right padding). lawcat's
  Triton kernel needs none: it is exact for every gate at a chunk size fixed by dtype and head dim, and picks
  its exact form per chunk on the device (lawcat.ops.triton_norm_gla).
Validation (no backward) and shapes beyond `max_graphs` run `eager_fn`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from functools import partial

import torch

from ..cuda_graphs import capture
from ..errors import LawcatError


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph | None
    inputs: dict                        # the graph's own copies of the batch tensors, padded
    token_count: torch.Tensor
    loss: torch.Tensor | None = None
    grads: list = field(default_factory=list)


class GraphedStep:
    """A drop-in loss function, `(batch, token_count, backward) -> loss`, for one CUDA device.

    graph_fn(batch, token_count, autocast, backward) -> loss: the step that is captured (sync-free, backward inside
    when asked); eager_fn, same signature: validation, uncapturable shapes and the fallback. pads: the pad value of
    each batch tensor the steps read (other keys are dropped). params: the trained parameters (their .grad is what
    a replay writes). warmup: eager runs of graph_fn before each capture (they compile kernels and initialise the
    libraries' workspaces; their gradients are discarded, no optimizer step sees them). name: for messages."""

    def __init__(self, params, graph_fn, eager_fn, pads: dict, autocast=contextlib.nullcontext,
                 pad_multiple: int = 64, max_graphs: int = 4, warmup: int = 2, name: str = "step"):
        params = list(params)
        device = params[0].device
        if device.type != "cuda":
            raise LawcatError(f"{name}.cuda_graph needs a CUDA device; the student is on {device}")
        self.params, self.name = params, name
        self.graph_fn, self.eager_fn, self.pads = graph_fn, eager_fn, dict(pads)
        # Autocast's cast cache would hand the graph casts made outside it; casting inside the graph is the same
        # arithmetic. (The argument is the recipe's autocast factory, a partial of torch.autocast or a null one.)
        self.autocast = partial(autocast, cache_enabled=False) if autocast is not contextlib.nullcontext else autocast
        self.pad_multiple, self.max_graphs, self.warmup = pad_multiple, max_graphs, warmup
        self.graphs: dict[tuple, _Graph] = {}
        self.pool = torch.cuda.graph_pool_handle()
        self.replays = self.eager_steps = 0  # counters for the summary and the tests

    def stats(self) -> dict:
        return {"replays": self.replays, "eager_steps": self.eager_steps, "graphs": len(self.graphs)}

    def eager(self, batch, token_count, backward=True):
        self.eager_steps += 1
        return self.eager_fn(batch, token_count, self.autocast, backward)

    def __call__(self, batch: dict, token_count, backward: bool = True) -> torch.Tensor:
        if not backward:
            return self.eager_fn(batch, token_count, self.autocast, False)
        # Earlier micro-batches' gradients, copied out: a capture clears .grad and a replay overwrites its buffers.
        earlier = [None if p.grad is None else p.grad.clone() for p in self.params]
        entry = self._entry(batch, token_count)
        if entry is None:  # nothing was captured, so .grad is as it was: autograd adds to it
            return self.eager(batch, token_count)
        self._replay(entry, batch, token_count)
        for p, g, before in zip(self.params, entry.grads, earlier):
            p.grad = g if before is None else before + g
        return entry.loss.clone()

    def release(self) -> None:
        """Free the graphs and their memory pool (all of the step's activations), e.g. before the next stage; the
        parameters' gradients, which live in that pool, are dropped."""
        for p in self.params:
            p.grad = None
        self.graphs.clear()
        self.pool = torch.cuda.graph_pool_handle()
        torch.cuda.empty_cache()

    # ---- internals -----------------------------------------------------------------------------------------------
    def _entry(self, batch, token_count) -> _Graph | None:
        """The graph for this batch's padded shape (captured on first use), or None past max_graphs."""
        B, T = batch["input_ids"].shape
        key = (B, -(-T // self.pad_multiple) * self.pad_multiple)
        if key not in self.graphs:
            if len(self.graphs) >= self.max_graphs:
                return None
            self._capture(batch, token_count, key)
        return self.graphs[key]

    def _replay(self, entry: _Graph, batch, token_count) -> None:
        self._load(entry, batch, token_count)
        entry.graph.replay()
        self.replays += 1

    def _load(self, entry: _Graph, batch, token_count) -> None:
        for name, static in entry.inputs.items():
            src = batch[name]
            T = src.shape[1]
            static[:, :T].copy_(src)
            static[:, T:].fill_(self.pads[name])
        entry.token_count.fill_(float(token_count))

    def _capture(self, batch: dict, token_count, key: tuple) -> None:
        B, L = key
        missing = sorted(set(self.pads) - set(batch))
        if missing:
            raise LawcatError(f"{self.name}: the batch lacks {', '.join(missing)}, which the captured step reads")
        ref = batch["input_ids"]
        entry = _Graph(None, {n: torch.empty(B, L, dtype=batch[n].dtype, device=ref.device) for n in self.pads},
                       torch.empty((), dtype=torch.float32, device=ref.device))
        self._load(entry, batch, token_count)

        def clear_grads():
            for p in self.params:
                p.grad = None

        def warm_step():  # Triton compiles, cuBLAS/cuDNN pick their kernels; its gradients are dropped
            clear_grads()
            self.graph_fn(entry.inputs, entry.token_count, self.autocast, True)

        try:
            graph, loss = capture(lambda: self.graph_fn(entry.inputs, entry.token_count, self.autocast, True),
                                  self.warmup, pool=self.pool, warm_fn=warm_step, before_capture=clear_grads)
        except torch.OutOfMemoryError as e:
            # Each captured shape keeps its own activations and logits in the pool, and the next shape's warm-up
            # runs eagerly beside them: a recipe with several long shapes can fill the card where its eager steps
            # fit (recipes/niah-diverse-long.yaml's comment has the measurement).
            done = ", ".join(f"{b} x {t}" for b, t in self.graphs) or "none"
            raise LawcatError(f"{self.name}.cuda_graph: the step for a batch of {B} rows x {L} tokens ran out of GPU "
                              f"memory while being captured (shapes captured before it: {done}); run this recipe "
                              f"with {self.name}.cuda_graph=false, or with fewer, shorter batch shapes") from e
        without = sum(p.grad is None for p in self.params)
        if without:
            raise LawcatError(f"the captured {self.name} step leaves {without} trained parameter(s) without a "
                              "gradient; the step does not use them")
        entry.graph, entry.loss = graph, loss
        entry.grads = [p.grad for p in self.params]
        self.graphs[key] = entry
