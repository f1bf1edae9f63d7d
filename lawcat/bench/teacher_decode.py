"""The teacher's decode at its fastest: a static KV cache (transformers' StaticCache) and each step either replayed
from one CUDA graph that lawcat captures (`mode="graph"`) or run through transformers' documented compiled path,
the forward under `torch.compile(mode="reduce-overhead")` (`mode="compiled"`; CUDA graphs of torch's own).

`lawcat bench` decodes the teacher through transformers' eager forward with a DynamicCache by default, which on a
GPU is bound by the host's kernel launches (49-79 ms per token for the Llama-3.2-1B shape on an H200; results/bench/),
while the student's step can be replayed from a graph (lawcat.models.graph_decode). A ratio between the two says
more about launch overhead than about attention. This gives the teacher the same advantage
(`lawcat bench --teacher-decode graph,compiled`), and the bench's ratio takes the faster teacher.

The cache has a fixed length: every position is a fixed slot, so a step written at position p is idempotent (a
warm-up run at p is overwritten by the real step at p), and the position advances on the device after each replay.
Transformers' static layers (5.x) write at a length counter of their own, which every forward advances in place and
which ignores `cache_position`: the capture's warm-up would move it past the prompt, so the real steps would land in
later slots, attend over the warm-up's junk, and run off the cache's end. The counters are put back after the
warm-up, so the first replay writes slot p.
"""
from __future__ import annotations

import torch

from ..cuda_graphs import capture


def _length_counters(cache) -> list[torch.Tensor]:
    """The per-layer tensors in which transformers' static layers count the tokens written (none in versions whose
    layers write at `cache_position`)."""
    counters = [getattr(layer, "cumulative_length", None) for layer in getattr(cache, "layers", [])]
    return [c for c in counters if isinstance(c, torch.Tensor)]


MODES = ("static", "graph", "compiled")


class StaticTeacherDecoder:
    """prefill(ids) then step(token [B, 1]) -> logits [B, 1, vocab] (valid until the next step).

    mode: "static" (eager steps over the static cache), "graph" (each step replayed from one CUDA graph; CUDA only)
    or "compiled" (the forward under torch.compile: mode "reduce-overhead" on CUDA, inductor's default elsewhere;
    `compile_kwargs` replace those options, e.g. a test's counting backend)."""

    def __init__(self, model, max_len: int, mode: str = "graph", compile_kwargs: dict | None = None):
        from transformers import StaticCache

        if mode not in MODES:
            raise ValueError(f"unknown teacher decode mode {mode!r}; use one of {', '.join(MODES)}")
        self.model, self.max_len, self.mode = model, max_len, mode
        self.cache = StaticCache(config=model.config, max_cache_len=max_len)
        self.forward = self._forward
        if mode == "compiled":
            on_cuda = next(model.parameters()).device.type == "cuda"
            options = compile_kwargs or ({"mode": "reduce-overhead"} if on_cuda else {})
            self.forward = torch.compile(self._forward, fullgraph=True, dynamic=False, **options)
        self.graph = None
        self.position = None   # [1] long on the model's device: the slot the next step writes
        self.token = None      # [B, 1] the graph's input
        self.logits = None

    def prefill(self, ids: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        if T >= self.max_len:
            raise ValueError(f"a prompt of {T} tokens leaves no room in a static cache of {self.max_len}")
        positions = torch.arange(T, device=ids.device)
        out = self.model(input_ids=ids, past_key_values=self.cache, cache_position=positions, use_cache=True,
                         logits_to_keep=1)
        self.position = torch.full((1,), T, dtype=torch.long, device=ids.device)
        self.token = torch.zeros(B, 1, dtype=ids.dtype, device=ids.device)
        return out.logits

    def _forward(self):
        return self.model(input_ids=self.token, past_key_values=self.cache, cache_position=self.position,
                          use_cache=True).logits

    def step(self, token: torch.Tensor) -> torch.Tensor:
        if self.position is None:
            raise RuntimeError("prefill first")
        self.token.copy_(token)
        if self.mode == "graph" and self.graph is None:
            counters = _length_counters(self.cache)
            before = [c.clone() for c in counters]
            self.graph, self.logits = capture(self._forward, 2)  # the warm-up runs two steps at slot p
            for counter, value in zip(counters, before):
                counter.copy_(value)
        if self.graph is not None:
            self.graph.replay()
            logits = self.logits
        else:
            logits = self.forward()
        self.position.add_(1)
        return logits
