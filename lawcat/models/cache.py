"""The recurrent decoding cache: per layer the conv tails, the GLA state with its normalizer, and (window on)
the last `window_size` keys/values. Its size does not depend on how many tokens were seen.

It plays the part of a transformers `Cache` for `generate()` (sequence length, beam reordering) without being
one: the KV caches of transformers grow with the context, this one never does.
"""
from __future__ import annotations

import torch


class LawcatCache:
    is_compileable = False

    def __init__(self, num_layers: int):
        self.layers: list[dict] = [{} for _ in range(num_layers)]
        self.seen_tokens = 0                 # columns consumed, padding included (what generate slices by)
        self.positions: torch.Tensor | None = None  # real tokens seen per row (RoPE positions under padding)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    @property
    def is_linear(self) -> list[bool]:
        # Read by transformers >= 5.24's generate(): for "linear" (Mamba-style) caches it stops slicing a prompt
        # that restarts from a filled cache. This cache counts the columns it consumed (seen_tokens), so the
        # ordinary slicing by get_seq_length() is the right one: report no layer as linear.
        return [False] * len(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def _apply(self, fn) -> None:
        self.layers = [{k: fn(v) for k, v in layer.items()} for layer in self.layers]
        if self.positions is not None:
            self.positions = fn(self.positions)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._apply(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._apply(lambda t: t[indices])

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._apply(lambda t: t.repeat_interleave(repeats, dim=0))

    def nbytes(self) -> int:
        """Bytes held by the state tensors: constant in the context length."""
        return sum(t.numel() * t.element_size() for layer in self.layers for t in layer.values())
