"""The recurrent decoding cache: per layer the conv tails, the GLA state with its normalizer, and (window on)
the last `window_size` keys/values; per row the RoPE position reached. Its size does not depend on how many tokens
were seen.

It is a transformers `Cache` whose layers are transformers' own linear-attention layers (`LinearAttentionLayer`,
the cache layer of Mamba-style models): generate() then treats it as a constant-size state (no 4-D masks, no KV
slicing). Every tensor is allocated at its first write and overwritten in place after that, so its addresses never
change: the cache is compileable (a compiled decode step reads and writes it where it is, with no copies), and a
CUDA graph captured over one decode step can be replayed for every token (lawcat.models.graph_decode), which is how
generate() decodes on CUDA.

A recurrent state cannot be rolled back to an earlier token: `crop` (what assisted decoding uses to reject draft
tokens) is refused, and the cache reports itself not croppable.
"""
from __future__ import annotations

import torch
from transformers.cache_utils import Cache, LinearAttentionLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..errors import LawcatError

# transformers 5.24 renamed generation's cache argument and output field from `past_key_values` to `cache`
# (the old name is deprecated); lawcat accepts both and hands generate() the one its transformers uses.
CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"

# Where each named state tensor lives in transformers' slots. The conv tails keep lawcat's layout,
# [batch, kernel - 1, channels] (the op's own), not Mamba's [batch, channels, kernel].
_SLOTS = {"conv_q": ("conv_states", 0), "conv_k": ("conv_states", 1), "gla": ("recurrent_states", 0)}

_NOT_OFFLOADED = "lawcat's cache is never offloaded: its size is fixed, whatever the context length"
_NO_ROLLBACK = ("lawcat's recurrent state cannot be rolled back to an earlier token (it keeps no per-token history), "
                "so the cache cannot be cropped")


@torch.compiler.disable
def _owned(t: torch.Tensor) -> torch.Tensor:
    """A fresh, contiguous copy of t with a fixed address. Runs eagerly even inside a compiled call (a graph break),
    so the buffer is never memory of a CUDA graph's pool, which the next replay would overwrite."""
    t = t.detach().clone(memory_format=torch.contiguous_format)
    torch._dynamo.mark_static_address(t)  # compiled steps (cudagraphs) read and write it where it is
    return t


class LawcatLayer(LinearAttentionLayer):
    """One decoder layer's state in transformers' linear-attention slots: conv_states[0] / [1] the q / k conv
    tails, recurrent_states[0] the GLA state [batch, heads, feature, head_dim + 1] in float32; `window_states` the
    softmax window's tensors (window_size on). Read as a mapping name -> tensor, the form the attention takes."""

    is_croppable = False

    def __init__(self):
        super().__init__(number_of_states=2)
        self.window_states: dict[str, torch.Tensor] = {}
        self.allocations = 0  # tensors (re)allocated: a CUDA graph captured over the old ones would be stale

    # ---- the named view --------------------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, torch.Tensor]:
        """The state as the attention takes it (empty before the first write: a fresh sequence)."""
        found = {name: getattr(self, slot)[i] for name, (slot, i) in _SLOTS.items()
                 if getattr(self, slot)[i] is not None}
        found.update(self.window_states)
        return found

    def items(self):
        return self.state.items()

    def keys(self):
        return self.state.keys()

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.state[name]

    def __len__(self) -> int:
        return len(self.state)

    def _set(self, name: str, t: torch.Tensor) -> None:
        self.allocations += 1
        if name in _SLOTS:
            slot, i = _SLOTS[name]
            getattr(self, slot)[i] = t
            getattr(self, f"is_{slot}_initialized")[i] = True
            self.has_previous_state[i] = True
            self.device = t.device
        else:
            self.window_states[name] = t

    # ---- writing -----------------------------------------------------------------------------------------------
    def write(self, new: dict[str, torch.Tensor]) -> None:
        """Store the state a forward returned: allocated at the first write, copied in place after."""
        held = self.state
        if not held:
            for name, t in new.items():
                self._set(name, _owned(t))
            return
        if set(new) != set(held):
            raise LawcatError(f"a forward changed the cache's layout ({sorted(held)} -> {sorted(new)})")
        for name, t in new.items():
            if t.shape != held[name].shape:
                raise LawcatError(f"cache tensor {name} holds shape {tuple(held[name].shape)}, the forward gave "
                                  f"{tuple(t.shape)}: a cache serves one batch; start a new one (model.new_cache())")
            held[name].copy_(t)

    def _map(self, fn) -> None:
        """Replace every tensor by fn(tensor), re-owned (the batch changed: a new allocation)."""
        for name, t in self.state.items():
            self._set(name, _owned(fn(t)))

    def _map_in_place(self, fn) -> None:
        for t in self.state.values():
            t.copy_(fn(t))

    # ---- transformers' layer API -------------------------------------------------------------------------------
    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        # In place: the buffers keep their addresses, so a compiled step keeps reading them.
        self._map_in_place(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._map(lambda t: t[indices])

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._map(lambda t: t.repeat_interleave(repeats, dim=0))

    def reset(self) -> None:
        # A zero state is exactly a fresh one (zero conv tails, zero GLA state, an all-invalid window), so zeroing
        # in place forgets the sequence and keeps the addresses.
        for t in self.state.values():
            t.zero_()
        self.has_previous_state = dict.fromkeys(self.has_previous_state, False)

    def offload(self) -> None:
        raise LawcatError(_NOT_OFFLOADED)

    def prefetch(self) -> None:
        raise LawcatError(_NOT_OFFLOADED)

    def activate_past_recording(self, *args, **kwargs) -> None:
        raise LawcatError(_NO_ROLLBACK)

    def crop(self, tokens_to_remove: int) -> None:
        raise LawcatError(_NO_ROLLBACK)

    def get_seq_length(self) -> int:
        raise LawcatError("a LAWCAT layer does not count tokens; ask the cache (cache.get_seq_length())")


class LawcatCache(Cache):
    """Every layer's recurrent state (LawcatLayer), the RoPE position each row reached and the columns consumed."""

    def __init__(self, num_layers: int):
        super().__init__(layers=[LawcatLayer() for _ in range(num_layers)])
        # Columns consumed, padding included (what generate slices by). A tensor advanced in place, so that a
        # compiled or graphed step counts its tokens without a Python int to specialize on.
        self._seen = _owned(torch.zeros((), dtype=torch.long))
        self._positions: torch.Tensor | None = None  # real tokens seen per row (RoPE positions under padding)
        self._allocations = 0

    # ---- written by the forward --------------------------------------------------------------------------------
    def write(self, layer_idx: int, new_state: dict[str, torch.Tensor]) -> None:
        self.layers[layer_idx].write(new_state)

    def advance(self, tokens: int, device: torch.device) -> None:
        """Count `tokens` more columns consumed (on the state's device, so a CUDA graph counts its own steps)."""
        if self._seen.device != device:
            self._seen = _owned(self._seen.to(device))
            self._allocations += 1
        self._seen.add_(tokens)

    @property
    def positions(self) -> torch.Tensor | None:
        return self._positions

    @positions.setter
    def positions(self, value: torch.Tensor | None) -> None:
        """Set the RoPE positions the next tokens continue from (per row), or None (a fresh sequence)."""
        self._positions = None if value is None else _owned(value)
        self._allocations += 1

    def write_positions(self, following: torch.Tensor) -> None:
        """Store the positions a forward reached: allocated at the first write, copied in place after."""
        if self._positions is None:
            self.positions = following
            return
        if following.shape != self._positions.shape:
            raise LawcatError(f"the cache holds positions for {self._positions.shape[0]} rows, the forward has "
                              f"{following.shape[0]}: a cache serves one batch; start a new one (model.new_cache())")
        self._positions.copy_(following)

    # ---- read ----------------------------------------------------------------------------------------------------
    @property
    def seen_tokens(self) -> int:
        return int(self._seen)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    @property
    def allocations(self) -> int:
        """How many times a tensor of the cache was (re)allocated; equal counts mean the same buffers."""
        return self._allocations + sum(layer.allocations for layer in self.layers)

    @property
    def has_state(self) -> bool:
        """Whether a forward has written the state (a prefill ran)."""
        return any(len(layer) for layer in self.layers)

    def nbytes(self) -> int:
        """Bytes held by the state tensors: constant in the context length."""
        return sum(t.numel() * t.element_size() for layer in self.layers for t in layer.state.values())

    def snapshot(self) -> dict:
        """A copy of the whole state, for `restore`."""
        return {"layers": [{k: v.clone() for k, v in layer.items()} for layer in self.layers],
                "positions": None if self._positions is None else self._positions.clone(),
                "seen": self._seen.clone()}

    def restore(self, saved: dict) -> None:
        """Put a `snapshot` back, in place (the buffers keep their addresses)."""
        for layer, state in zip(self.layers, saved["layers"]):
            layer.write(state)
        if saved["positions"] is None:
            self._positions = None
        else:
            self.write_positions(saved["positions"])
        self._seen.copy_(saved["seen"])

    # ---- transformers' cache API -------------------------------------------------------------------------------
    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        super().reorder_cache(beam_idx)
        if self._positions is not None:
            self._positions.copy_(self._positions.index_select(0, beam_idx.to(self._positions.device)))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        super().batch_select_indices(indices)
        if self._positions is not None:
            self.positions = self._positions[indices]

    def batch_repeat_interleave(self, repeats: int) -> None:
        super().batch_repeat_interleave(repeats)
        if self._positions is not None:
            self.positions = self._positions.repeat_interleave(repeats, dim=0)

    def reset(self) -> None:
        super().reset()
        self._seen.zero_()
        if self._positions is not None:  # position 0 is where a fresh sequence starts
            self._positions.zero_()

    def crop(self, tokens_to_remove: int) -> None:
        raise LawcatError(_NO_ROLLBACK)

    def activate_past_recording(self, *args, **kwargs) -> None:
        raise LawcatError(_NO_ROLLBACK)
