"""Short prompts prefilled by replaying a CUDA graph: one captured forward per (batch, bucket of tokens).

A short prefill of the student is mostly launches and host work, not arithmetic: on an H100 the 1B shape took
18.6 ms at 1K tokens and 18.6 ms at 2K (issue 21's table), where its matmul floor is ~9 ms. A graph replays the
whole forward's kernels in one launch. A graph has fixed shapes, so a prompt of T tokens runs in the smallest
bucket (a power of two, at least `min_tokens`) that holds it, left-padded and masked: the layers make a padded row
look exactly like the start of a shorter sequence (masked q, k, v and map, a zero gate: no decay), so the state and
the last position's logits are the prompt's own. The padded positions cost their share of the matmuls, so buckets
stop at `max_tokens`; a longer prompt is prefilled as it is (`LawcatForCausalLM.prefill`).

    prefill = GraphedPrefill(student)            # capture=None: CUDA graphs on CUDA, the same padded runs elsewhere
    logits, cache = prefill(ids)                 # [B, vocab] and a LawcatCache of the prompt, both the caller's

Each bucket keeps a cache whose tensors the captured forward overwrites; a call resets it inside the graph, replays,
and copies the state out into a new cache, so the returned cache and logits outlive the next call. Every bucket's
graph shares one memory pool; that is safe because each replay's outputs are copied before any other replay.
"""
from __future__ import annotations

import torch

from ..cuda_graphs import capture as capture_graph
from ..errors import LawcatError
from .cache import LawcatCache

MAX_TOKENS = 4096  # the longest prompt prefill(graph=True) puts in a bucket: beyond it, arithmetic dominates launches


def bucket_of(tokens: int, min_tokens: int) -> int:
    """The smallest power of two >= tokens, and >= min_tokens."""
    return max(min_tokens, 1 << max(0, tokens - 1).bit_length())


def _weight_addresses(model) -> tuple:
    """Where the model's tensors live: a graph reads them there, so a model moved or cast since (new tensors) needs
    its buckets captured again."""
    return tuple(t.data_ptr() for t in (*model.parameters(), *model.buffers()))


class _Bucket:
    """One (batch, tokens) shape: its input buffers, its cache and, on CUDA, its graph."""

    def __init__(self, model, batch: int, tokens: int, device, capture: bool, pool, warmup: int):
        self.model, self.tokens = model, tokens
        self.ids = torch.zeros(batch, tokens, dtype=torch.long, device=device)
        self.mask = torch.ones(batch, tokens, dtype=torch.long, device=device)
        self.cache = model.new_cache()
        # Warm-ups run with a padded column, so the kernels' masked variants (what the graph runs: the forward keeps
        # a mask while capturing, since asking whether it is all ones would sync) are compiled before the capture.
        self.mask[:, 0] = 0
        with torch.no_grad():
            self._forward()  # allocates the cache's tensors outside any graph's pool (their addresses never move)
        self.graph = self.logits = None
        self.weights = _weight_addresses(model)
        if capture:
            try:
                with torch.no_grad(), torch.cuda.device(device):
                    self.graph, self.logits = capture_graph(self._forward, warmup, pool=pool)
            except RuntimeError as e:  # e.g. a host sync in the forward (gla_backend "reference" asks for a minimum)
                raise LawcatError(f"this student's prefill cannot be captured in a CUDA graph (gla_backend "
                                  f"{model.config.gla_backend!r}): {str(e).strip()[:200]}; prefill without graph=True, "
                                  "or use the triton, fla or auto backend") from e

    def _forward(self) -> torch.Tensor:
        """The prompt's forward from a fresh state: the cache zeroed in place (a zero state is a fresh one)."""
        self.cache.reset()
        out = self.model(input_ids=self.ids, attention_mask=self.mask, past_key_values=self.cache, use_cache=True,
                         logits_to_keep=1)
        return out.logits[:, -1]

    def run(self, ids: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, LawcatCache]:
        T, pad = ids.shape[1], self.tokens - ids.shape[1]
        self.ids[:, :pad].zero_()
        self.ids[:, pad:].copy_(ids)
        self.mask[:, :pad].zero_()
        if mask is None:
            self.mask[:, pad:].fill_(1)
        else:
            self.mask[:, pad:].copy_(mask)
        if self.graph is not None:
            self.graph.replay()
            logits = self.logits.clone()
        else:
            logits = self._forward()
        out = self.model.new_cache()
        for i, layer in enumerate(self.cache.layers):
            out.write(i, layer.state)  # the first write copies (LawcatCache owns its tensors)
        out.advance(T, ids.device)  # the caller's columns; the bucket's padding is not theirs
        if self.cache.positions is not None:
            out.positions = self.cache.positions
        return logits, out


class GraphedPrefill:
    """Prefill prompts of up to `max_tokens` tokens from captured CUDA graphs (see the module docstring)."""

    def __init__(self, model, max_tokens: int = MAX_TOKENS, min_tokens: int = 256, capture: bool | None = None,
                 warmup: int = 2):
        if min_tokens < 1 or max_tokens < min_tokens:
            raise LawcatError(f"GraphedPrefill needs 1 <= min_tokens <= max_tokens, got {min_tokens}, {max_tokens}")
        if bucket_of(max_tokens, 1) != max_tokens:
            raise LawcatError(f"max_tokens must be a power of two (a bucket), got {max_tokens}")
        self.model, self.max_tokens, self.min_tokens = model, max_tokens, min_tokens
        self.capture, self.warmup = capture, warmup
        self.buckets: dict[tuple, _Bucket] = {}
        self.pool = None

    def __getstate__(self):
        """Pickled (or deep-copied, with the model) without its captured graphs: a copy captures its own."""
        return {**self.__dict__, "buckets": {}, "pool": None}

    def takes(self, ids: torch.Tensor) -> bool:
        """Whether a prompt is short enough for a bucket."""
        return 0 < ids.shape[1] <= self.max_tokens

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """(logits of the last position [B, vocab], LawcatCache) for a prompt of 1..max_tokens tokens: the same as
        `model.prefill(input_ids, attention_mask)`, up to rounding."""
        # The buckets' buffers outlive the call: made under inference mode, no later call outside it could write them.
        with torch.no_grad(), torch.inference_mode(False):
            return self._prefill(input_ids, attention_mask)

    def _prefill(self, input_ids, attention_mask):
        if input_ids.dim() != 2:
            raise LawcatError(f"input_ids must be [batch, tokens], got shape {tuple(input_ids.shape)}")
        if not self.takes(input_ids):
            raise LawcatError(f"a graphed prefill takes 1 to {self.max_tokens} tokens, got {input_ids.shape[1]}; "
                              "prefill longer prompts with model.prefill")
        if attention_mask is not None and attention_mask.shape != input_ids.shape:
            raise LawcatError(f"attention_mask must match input_ids {tuple(input_ids.shape)}, got "
                              f"{tuple(attention_mask.shape)}")
        device = input_ids.device
        capture = device.type == "cuda" if self.capture is None else self.capture
        if capture and device.type != "cuda":
            raise LawcatError(f"CUDA-graph prefill needs CUDA inputs; these are on {device}")
        key = (input_ids.shape[0], bucket_of(input_ids.shape[1], self.min_tokens), device)
        bucket = self.buckets.get(key)
        if bucket is not None and bucket.weights != _weight_addresses(self.model):
            # the model's tensors moved (to another device or dtype) since the capture: every bucket is stale
            self.buckets, self.pool, bucket = {}, None, None
        if bucket is None:
            if capture and self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()
            bucket = self.buckets[key] = _Bucket(self.model, key[0], key[1], device, capture, self.pool, self.warmup)
        return bucket.run(input_ids, attention_mask)
