"""Normalized gated linear attention (docs/method.md, Eq. 8): the entry point the layers call.

`gla_augmented` returns the V + 1 wide output (numerator columns, then the denominator) and the new state, so
callers that mix in other terms (the sliding window) can combine before dividing; `normalized_gla` divides.
The backend is chosen by device: fla's Triton kernels on CUDA, the plain-PyTorch reference elsewhere.
`backend="triton"` opts into lawcat's own fused kernel (lawcat.ops.triton_norm_gla), which carries z beside S
and divides in its epilogue; it serves the normalized, window-free path with T > 1 (except fp32 with head dims
above 64 on CUDA, not yet verified there) and falls back otherwise.
"""
from __future__ import annotations

import torch

from . import gla_reference as ref
from .triton_launch import interpreting

BACKENDS = ("auto", "reference", "recurrent", "fla", "triton")


def _pick(backend: str, x: torch.Tensor) -> str:
    """The kernel that serves a call. The GPU backends (fla, triton) name a kernel for CUDA tensors; a student
    trained with one and saved with it in its config runs on CPU through the reference ops, the same arithmetic
    (the Triton kernel also runs on CPU tensors under TRITON_INTERPRET=1, for its tests)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown GLA backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        return "fla" if x.is_cuda else "reference"
    if backend in ("fla", "triton") and not x.is_cuda and not (backend == "triton" and interpreting()):
        return "reference"
    return backend


def gla_augmented(q, k, v_aug, g, scale: float = 1.0, initial_state=None, backend: str = "auto",
                  chunk_size: int = 64):
    """(out_aug [B,T,H,V+1], final_state [B,H,K,V+1] fp32). One token uses the recurrent step kernel."""
    which = _pick(backend, q)
    if which == "triton":  # the fused kernel only gives the normalized output; the V+1 form goes elsewhere
        which = "fla" if q.is_cuda else "reference"
    T = q.shape[1]
    if which == "fla":
        from . import fla_backend
        if T == 1:
            return fla_backend.gla_step_fla(q, k, v_aug, g, scale, initial_state)
        return fla_backend.gla_chunk_fla(q, k, v_aug, g, scale, initial_state)
    if which == "recurrent" or T == 1:
        out, state = ref.gla_recurrent(q, k, v_aug, g, scale, initial_state)
    else:
        out, state = ref.gla_chunked(q, k, v_aug, g, scale, initial_state, chunk_size)
    return out.to(v_aug.dtype), state


def normalized_gla(q, k, v, g, scale: float = 1.0, initial_state=None, eps: float = 1e-6,
                   normalize: bool = True, backend: str = "auto", chunk_size: int = 64):
    """Eq. 8: out_t = (q_t S_t) / (q_t . z_t + eps). Returns (out [B,T,H,V], final_state [B,H,K,V+1]).

    With normalize=False the ones column is still carried (so the state layout never changes) and ignored.
    """
    # fp32 with head dims above 64: lawcat's kernel ran out of shared memory at 64- and 32-row chunks (results/bench/),
    # and its 16-row default for that case is tested only under the Triton interpreter, so fla serves it on CUDA
    wide_fp32 = q.dtype == torch.float32 and max(q.shape[-1], v.shape[-1]) > 64 and q.is_cuda
    if _pick(backend, q) == "triton" and normalize and q.shape[1] > 1 and not wide_fp32:
        from .triton_norm_gla import normalized_gla as fused

        return fused(q, k, v, g, scale=scale, initial_state=initial_state, output_final_state=True, eps=eps)
    out_aug, state = gla_augmented(q, k, ref.augment_ones(v), g, scale, initial_state, backend, chunk_size)
    out = ref.normalize(out_aug, eps) if normalize else out_aug[..., :-1]
    return out.to(v.dtype), state
