"""One-token decoding over a cache whose tensors never move, replayed from a CUDA graph on a GPU.

A decode step of a small student is all launch overhead: ~30 layers x a dozen small kernels for one token
(eagerly, the 1B shape decoded 49 tokens/s at 32K context on an H200, launch-bound; `results/bench/`).
The recurrent cache is what makes a graph possible here at all: its tensors have one shape whatever the context
(the teacher's KV cache grows by a row every step, so its step cannot be one fixed graph), and LawcatCache keeps
them in fixed buffers: each step writes the new state back into the same tensors, so one captured step can be
replayed for every token.

    logits, cache = student.prefill(ids)
    dec = StaticDecoder(student, cache)          # capture=None: a CUDA graph on CUDA, plain steps elsewhere
    for _ in range(n):
        logits = dec.step(logits.argmax(-1))     # [B, vocab]; valid until the next step
The cache stays usable afterwards (its tensors are the buffers; `cache.seen_tokens` counts the steps).
generate() on CUDA decodes this way by default (GraphedSteps, below).
"""
from __future__ import annotations

import torch
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..cuda_graphs import capture
from ..errors import LawcatError
from .cache import CACHE_FIELD, LawcatCache


class StaticDecoder:
    def __init__(self, model, cache: LawcatCache, capture: bool | None = None, warmup: int = 2,
                 position_ids: bool = False):
        """position_ids=True: each step also takes the tokens' positions (as generate() passes them)."""
        if not isinstance(cache, LawcatCache) or not cache.has_state:
            raise LawcatError("StaticDecoder needs the LawcatCache of a prefill (model.prefill(ids) returns one)")
        ref = next(t for layer in cache.layers for t in layer.state.values())
        self.model, self.cache, self.device = model, cache, ref.device
        self.batch = ref.shape[0]
        capture = self.device.type == "cuda" if capture is None else capture
        if capture and self.device.type != "cuda":
            raise LawcatError(f"a CUDA-graph decoder needs a CUDA cache; this one is on {self.device}")
        # The cache's tensors are the buffers: a forward overwrites them in place (LawcatCache), so one captured
        # step reads and writes the same memory at every replay. The step's inputs get buffers of their own.
        self.inputs = {name: torch.zeros(self.batch, 1, dtype=torch.long, device=self.device)
                       for name in ("input_ids", "position_ids")[:1 + position_ids]}
        self.allocations = cache.allocations
        self.graph, self.logits, self.steps = None, None, 0
        if capture:
            self._capture(warmup)

    def _step(self) -> torch.Tensor:
        """The model's own decode step over the cache's buffers."""
        return self.model(**self.inputs, past_key_values=self.cache, use_cache=True).logits[:, -1]

    def _capture(self, warmup: int) -> None:
        saved = self.cache.snapshot()
        with torch.no_grad():  # the warm-up compiles the kernels and advances the state, restored below
            self.graph, self.logits = capture(self._step, warmup)
        self.cache.restore(saved)  # capture ran nothing; undo the warm-up's steps

    @torch.no_grad()
    def step(self, ids: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Feed one token per row (ids [B] or [B, 1]; position_ids likewise, if the decoder takes them); returns
        the next-token logits [B, vocab], valid until the next step."""
        if ids.numel() != self.batch:
            raise LawcatError(f"this decoder steps {self.batch} rows, got {ids.numel()} token(s)")
        if (position_ids is not None) != ("position_ids" in self.inputs):
            raise LawcatError(f"this decoder was made with position_ids={'position_ids' in self.inputs}; "
                              "make one for the inputs you feed")
        if self.cache.allocations != self.allocations:
            raise LawcatError("the cache's tensors were reallocated (its batch changed) since this decoder was made; "
                              "make a new one")
        self.inputs["input_ids"].copy_(ids.reshape(self.batch, 1))
        if position_ids is not None:
            self.inputs["position_ids"].copy_(position_ids.reshape(-1, 1))  # [1, 1] serves every row, as in the forward
        if self.graph is not None:
            self.graph.replay()  # the step's token count is in the graph too (the cache counts on the device)
            logits = self.logits
        else:
            logits = self._step()
        self.steps += 1
        return logits


class GraphedSteps:
    """generate()'s forward with its one-token decode steps served by a StaticDecoder over the cache: on CUDA,
    each step is a replay of one captured CUDA graph. Anything else (a prefill, a prefill chunk, a step with a
    padded column, an input a captured step does not take) runs the model as it is.

    It is what LawcatForCausalLM.get_compiled_call gives generate() on CUDA by default, in place of torch.compile:
    fla's one-token GLA kernel is opaque to torch.compile (lawcat.ops.fla_backend disables it there), so a compiled
    step breaks its graph at every layer, while a captured graph holds the whole step, fla's kernels included."""

    def __init__(self, model, capture: bool | None = None):
        self.model, self.capture, self.decoder = model, capture, None

    def __call__(self, **inputs):
        step = _decode_step(inputs)
        if step is None:
            return self.model(**inputs)
        cache, ids, position_ids = step
        dec = self.decoder
        if (dec is None or dec.cache is not cache or dec.allocations != cache.allocations
                or ("position_ids" in dec.inputs) != (position_ids is not None)):
            dec = self.decoder = StaticDecoder(self.model, cache, self.capture, position_ids=position_ids is not None)
        logits = dec.step(ids, position_ids)
        return CausalLMOutputWithPast(logits=logits[:, None], **{CACHE_FIELD: cache})


def _cache_of(inputs: dict):
    cache = inputs.get("cache")
    return cache if cache is not None else inputs.get("past_key_values")


def is_decode_step(inputs: dict) -> bool:
    """Whether a forward's `inputs` are one token per row over a cache that a prefill has filled."""
    cache, ids = _cache_of(inputs), inputs.get("input_ids")
    return isinstance(cache, LawcatCache) and cache.has_state and ids is not None and ids.shape[1] == 1


def _decode_step(inputs: dict):
    """(cache, ids, position_ids) when a forward's `inputs` are a one-token step a StaticDecoder takes, else None."""
    if not is_decode_step(inputs):
        return None
    inputs, cache = dict(inputs), _cache_of(inputs)
    inputs.pop("return_dict", None)  # the forward returns its output dataclass either way
    for k in ("cache", "past_key_values"):
        inputs.pop(k, None)
    ids, position_ids, mask = (inputs.pop(k, None) for k in ("input_ids", "position_ids", "attention_mask"))
    keep, use_cache = inputs.pop("logits_to_keep", 0), inputs.pop("use_cache", None)
    if use_cache is False or not isinstance(keep, int) or (position_ids is not None and position_ids.shape[-1] != 1):
        return None
    if any(v is not None for v in inputs.values()):  # inputs_embeds, labels, ...: not what a captured step takes
        return None
    # generate() extends the mask by a column of ones per new token, so a step's column is all ones, which means
    # nothing (a captured step takes no mask); anything else runs as it is.
    if mask is not None and not bool(mask[:, -1:].all()):
        return None
    return cache, ids, position_ids
