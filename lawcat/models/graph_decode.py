"""One-token decoding over a cache whose tensors never move, replayed from a CUDA graph on a GPU.

A decode step of a small student is all launch overhead: ~30 layers x a dozen small kernels for one token
(eagerly, the 1B shape decoded 49 tokens/s at 32K context on an H200, launch-bound; `results/bench/`).
The recurrent cache is what makes a graph possible here at all: its tensors have one shape whatever the context
(the teacher's KV cache grows by a row every step, so its step cannot be one fixed graph). StaticDecoder keeps
them in fixed buffers: each step writes the new state back into the same tensors, so one captured step can be
replayed for every token.

    logits, cache = student.prefill(ids)
    dec = StaticDecoder(student, cache)          # capture=None: a CUDA graph on CUDA, plain steps elsewhere
    for _ in range(n):
        logits = dec.step(logits.argmax(-1))     # [B, vocab]; valid until the next step
The cache stays usable afterwards (its tensors are the buffers; `cache.seen_tokens` counts the steps).
"""
from __future__ import annotations

import torch

from ..cuda_graphs import warm_up_on_side_stream
from .cache import LawcatCache
from .errors import LawcatError


class StaticDecoder:
    def __init__(self, model, cache: LawcatCache, capture: bool | None = None, warmup: int = 2):
        if not isinstance(cache, LawcatCache) or not any(cache.layers):
            raise LawcatError("StaticDecoder needs the LawcatCache of a prefill (model.prefill(ids) returns one)")
        ref = next(t for layer in cache.layers for t in layer.values())
        self.model, self.cache, self.device = model, cache, ref.device
        self.batch = ref.shape[0]
        capture = self.device.type == "cuda" if capture is None else capture
        if capture and self.device.type != "cuda":
            raise LawcatError(f"a CUDA-graph decoder needs a CUDA cache; this one is on {self.device}")
        # The buffers: the cache's own tensors, made contiguous and owned (a prefill's conv tail is a view).
        cache.layers = [{k: v.clone() for k, v in layer.items()} for layer in cache.layers]
        if cache.positions is not None:
            cache.positions = cache.positions.clone()
        self.ids = torch.zeros(self.batch, 1, dtype=torch.long, device=self.device)
        self.graph, self.logits, self.steps = None, None, 0
        if capture:
            self._capture(warmup)

    def _step(self) -> torch.Tensor:
        """The model's own decode step on a scratch cache over the buffers; the new state is copied back in."""
        cache = self.cache
        scratch = LawcatCache(len(cache.layers))
        scratch.layers = [dict(layer) for layer in cache.layers]
        scratch.positions, scratch.seen_tokens = cache.positions, cache.seen_tokens
        out = self.model(input_ids=self.ids, past_key_values=scratch, use_cache=True)
        self._write(scratch.layers, scratch.positions)
        return out.logits[:, -1]

    def _write(self, layers: list[dict], positions) -> None:
        """Copy a state (per-layer tensors, RoPE positions) into the buffers, in place."""
        for buffers, new in zip(self.cache.layers, layers):
            if set(new) != set(buffers):
                raise LawcatError(f"a decode step changed the cache's layout ({sorted(buffers)} -> {sorted(new)})")
            for name, buf in buffers.items():
                buf.copy_(new[name])
        if self.cache.positions is not None:
            self.cache.positions.copy_(positions)

    def _capture(self, warmup: int) -> None:
        saved = [{k: v.clone() for k, v in layer.items()} for layer in self.cache.layers]
        saved_pos = None if self.cache.positions is None else self.cache.positions.clone()
        with torch.no_grad():  # compiles the kernels; the state the warm-up advances is restored below
            warm_up_on_side_stream(self._step, warmup)
        self.graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.graph):
            self.logits = self._step()
        self._write(saved, saved_pos)  # capture ran nothing; undo the warm-up's steps

    @torch.no_grad()
    def step(self, ids: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (ids [B] or [B, 1]); returns the next-token logits [B, vocab]."""
        if ids.numel() != self.batch:
            raise LawcatError(f"this decoder steps {self.batch} rows, got {ids.numel()} token(s)")
        self.ids.copy_(ids.reshape(self.batch, 1))
        if self.graph is not None:
            self.graph.replay()
            logits = self.logits
        else:
            logits = self._step()
        self.cache.seen_tokens += 1
        self.steps += 1
        return logits
