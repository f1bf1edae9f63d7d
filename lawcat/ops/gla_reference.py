"""Plain-PyTorch gated linear attention with the normalizer carried in the state.

Everything here is differentiable, runs on any device and needs no extra package. It is the reference the
fast CUDA path is tested against and the path used on CPU.

Convention (shared by every op in lawcat.ops):
  q, k, g : [B, T, H, K]     v : [B, T, H, V]      g is the log forget gate (<= 0) per key dimension
  state   : [B, H, K, V + 1] float32; the last column is the normalizer z, i.e. the same recurrence run on a
            value column of ones (docs/method.md, Eq. 8: the gate does not depend on the value index, so z is exact).

Recurrence:  S_t = diag(exp g_t) S_{t-1} + k_t^T [v_t, 1],   out_t = scale * q_t S_t   (width V + 1).
The caller divides the first V columns by the last one (see `normalize`).
"""
from __future__ import annotations

import torch

# Elements of the [chunk, chunk, K] decay tensor processed at once; bounds the memory of the parallel part.
_PAIRWISE_BUDGET = 1 << 24


def augment_ones(v: torch.Tensor) -> torch.Tensor:
    """[..., V] -> [..., V + 1] with a trailing column of ones (the normalizer's value)."""
    return torch.cat([v, v.new_ones(*v.shape[:-1], 1)], dim=-1)


def normalize(out_aug: torch.Tensor, eps: float) -> torch.Tensor:
    """Split the augmented output into numerator and denominator and divide (Eq. 8)."""
    return out_aug[..., :-1] / (out_aug[..., -1:] + eps)


def _initial(state, B, H, K, Vp1, device):
    if state is None:
        return torch.zeros(B, H, K, Vp1, device=device, dtype=torch.float32)
    if state.shape != (B, H, K, Vp1):
        raise ValueError(f"initial_state has shape {tuple(state.shape)}, expected {(B, H, K, Vp1)}")
    return state


def gla_recurrent(q, k, v_aug, g, scale: float, initial_state=None):
    """Token-by-token recurrence. Returns (out_aug [B,T,H,V+1], final_state). Slow; for tests and decoding."""
    B, T, H, K = q.shape
    work = torch.promote_types(q.dtype, torch.float32)
    S = _initial(initial_state, B, H, K, v_aug.shape[-1], q.device).to(work)
    q, k, v_aug, g = (x.to(work) for x in (q, k, v_aug, g))
    if T == 1:  # a decode step (CPU's path): the same update without the loop, stack and einsum's parsing
        S = S * g[:, 0].exp().unsqueeze(-1) + k[:, 0].unsqueeze(-1) * v_aug[:, 0].unsqueeze(-2)
        out = ((q[:, 0] * scale).unsqueeze(-2) @ S).transpose(1, 2)        # [B, 1, H, V + 1]
        return out, S.float() if work == torch.float32 else S
    outs = []
    for t in range(T):
        S = S * g[:, t].exp().unsqueeze(-1) + k[:, t].unsqueeze(-1) * v_aug[:, t].unsqueeze(-2)
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    out = torch.stack(outs, dim=1) if outs else v_aug.new_zeros(B, 0, H, v_aug.shape[-1])
    return out, S.float() if work == torch.float32 else S


def gla_chunked(q, k, v_aug, g, scale: float, initial_state=None, chunk_size: int = 64):
    """Chunk-parallel form: parallel inside chunks, recurrent across them; memory linear in T.

    Numerically safe for any g <= 0: the inter-chunk terms only take exponentials of non-positive numbers, and
    the in-chunk term is factored in float64 (or, for chunks that decay by more than 600 nats, computed from
    the explicit pairwise decay exp(G_i - G_j), G being the inclusive cumulative sum of g).
    """
    B, T, H, K = q.shape
    Vp1 = v_aug.shape[-1]
    work = torch.promote_types(q.dtype, torch.float32)
    S = _initial(initial_state, B, H, K, Vp1, q.device).to(work)
    if T == 0:
        return v_aug.new_zeros(B, 0, H, Vp1).to(work), S
    C = max(1, min(chunk_size, T))
    pad = (-T) % C
    # [B, H, N, C, *] layout; padded positions have k = v = g = 0, so they neither feed nor decay the state.
    def chunks(x):
        x = x.to(work).transpose(1, 2)
        if pad:
            x = torch.nn.functional.pad(x, (0, 0, 0, pad))
        return x.reshape(B, H, -1, C, x.shape[-1])

    qc, kc, vc, gc = chunks(q * scale), chunks(k), chunks(v_aug), chunks(g)
    N = qc.shape[2]
    G = gc.cumsum(dim=3)                                  # inclusive cumulative log decay inside each chunk
    G_last = G[:, :, :, -1:, :]                           # decay over the whole chunk
    # Contribution of each chunk to the state it hands on: sum_j exp(G_C - G_j) k_j^T v_j.
    k_to_end = kc * (G_last - G).exp()
    local_states = torch.einsum("bhnck,bhncv->bhnkv", k_to_end, vc)
    chunk_decay = G_last.squeeze(3).exp()                 # [B, H, N, K]
    # Sequential scan over chunks: only small [K, V+1] updates, so the Python loop is cheap.
    starts = []
    for n in range(N):
        starts.append(S)
        S = S * chunk_decay[:, :, n].unsqueeze(-1) + local_states[:, :, n]
    S_start = torch.stack(starts, dim=2)                  # state entering each chunk
    out = torch.einsum("bhnck,bhnkv->bhncv", qc * G.exp(), S_start)
    # Intra-chunk part: A_ij = sum_k q_ik k_jk exp(G_ik - G_jk) for j <= i.
    causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    if float(G[:, :, :, -1].detach().min()) > -_FACTORED_RANGE:
        A = _intra_factored(qc, kc, G, causal).to(work)
    else:
        A = _intra_pairwise(qc, kc, G, causal)
    out = out + A @ vc
    out = out.reshape(B, H, N * C, Vp1)[:, :, :T].transpose(1, 2)
    return out, S


# Chunks whose total decay stays under this many nats use the factored form (float64 exponents reach ~709).
_FACTORED_RANGE = 600.0


def _intra_factored(qc, kc, G, causal):
    """exp(G_i - G_j) = exp(G_i) exp(-G_j): the decay factors out of the sum, so A is one matmul. In float64 the
    factors cannot overflow while a chunk decays by less than _FACTORED_RANGE nats; entries above the diagonal
    (which may be huge) are discarded by the mask, never summed."""
    G64 = G.double()
    A = (qc.double() * G64.exp()) @ (kc.double() * (-G64).exp()).transpose(-1, -2)
    return A.masked_fill(~causal, 0.0)


def _intra_pairwise(qc, kc, G, causal):
    """The always-safe form for extreme gates: the [C, C, K] decay tensor itself, in groups of chunks."""
    B, H, N, C, K = qc.shape
    group = max(1, _PAIRWISE_BUDGET // max(1, B * H * C * C * K))
    parts = []
    for s in range(0, N, group):
        Gs = G[:, :, s:s + group]
        diff = (Gs.unsqueeze(4) - Gs.unsqueeze(3)).masked_fill(~causal[:, :, None], float("-inf"))
        parts.append(torch.einsum("bhnik,bhnjk,bhnijk->bhnij", qc[:, :, s:s + group], kc[:, :, s:s + group],
                                  diff.exp()))
    return torch.cat(parts, dim=2)
