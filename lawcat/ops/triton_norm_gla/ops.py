"""Normalized gated linear attention (LAWCAT Eq. 8): Triton forward and backward.

    S_t = diag(a_t) S_{t-1} + k_t^T v_t,   z_t = a_t * z_{t-1} + k_t,   a_t = exp(g_t)
    o_t = (scale q_t S_t) / (scale q_t . z_t + eps)

Shapes follow fla: q, k, g are [B, T, H, K]; v is [B, T, H, V]; the state is [B, H, K, V+1] float32
with z as its last column.  Triton is imported on first call only.
"""

from __future__ import annotations

import os

import torch

from ..triton_launch import cdiv, interpreting, next_pow2

__all__ = ["normalized_gla"]

CHUNK = 64
BLOCK = 16  # rows of the blocks inside a chunk (tl.dot needs >= 16); see _kernels' docstring
_CHUNKS = (64, 32, 16)
# A factored product exp(G_t - G_r) * exp(G_r - G_s) is used only where no factor exceeds exp(RANGE) (fp32 and
# bf16 overflow at ~exp(88)); the kernels check that per chunk and per block on the device. CONFIG["factor_range"]
# overrides it (a negative value sends every chunk down the pair-by-pair path: its tests and worst-case timing).
RANGE = 80.0


_kernels = None


def _get_kernels():
    global _kernels
    if _kernels is None:
        from . import _kernels as mod

        _kernels = mod
    return _kernels


# Debug/test knob: allocate every output and scratch buffer filled with NaN, so that an element a
# kernel fails to write shows up (set by the tests, or LAWCAT_NORM_GLA_POISON=1).
POISON = os.environ.get("LAWCAT_NORM_GLA_POISON", "0") not in ("", "0")


def _empty(*shape, device, dtype):
    if POISON:
        return torch.full(shape, float("nan"), device=device, dtype=dtype)
    return torch.empty(*shape, device=device, dtype=dtype)


# Launch configuration; None = automatic.  Tuning knobs (benchmarks/bench_norm_gla.py --tune).
CONFIG = {
    "seq_block_k": None,       # K tile of the sequential state kernels (None: all of K)
    "programs_per_sm": 8,      # segments are sized so the state kernels launch this many programs per SM
    "fwd_local_warps": None,
    "fwd_out_warps": None,
    "bwd_local_warps": None,
    "bwd_grad_warps": None,
    "num_stages": 3,           # upper bound for the sequential kernels (see _stages)
    "bwd_split": None,         # the gradient kernel in two passes, dq/dk/dg and dv (None: fp32 with wide tiles)
    "factor_range": None,      # None: RANGE
}

_SM_COUNT = {}


def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return 132
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _SM_COUNT:
        _SM_COUNT[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return _SM_COUNT[idx]


def _plan(B, T, H, K, V, device, chunks_per_segment=None, chunk=CHUNK):
    BT = chunk
    NT = cdiv(T, BT)
    BK = next_pow2(K)
    BV = next_pow2(V)
    # K tile of the sequential (state) kernels; parallelism comes from the segments
    BKs = BK if CONFIG["seq_block_k"] is None else min(BK, next_pow2(CONFIG["seq_block_k"]))
    NKs = cdiv(K, BKs)
    if chunks_per_segment is None:
        target = max(1, cdiv(int(CONFIG["programs_per_sm"] * _num_sms(device)), B * H * NKs))
        NS = max(1, cdiv(NT, target))
    else:
        NS = max(1, int(chunks_per_segment))
    NSEG = cdiv(NT, NS)
    return dict(BT=BT, NT=NT, BK=BK, BV=BV, BKs=BKs, NKs=NKs, NS=NS, NSEG=NSEG)


def _prec(dtype: torch.dtype) -> str:
    # fp32 inputs: 3-pass tf32 on the tensor cores (~fp32 accuracy; the interpreter ignores this);
    # bf16/fp16 operands: the setting does not apply
    return "tf32x3" if dtype == torch.float32 else "tf32"


def _cfg(name, default):
    val = CONFIG.get(name)
    return default if val is None else val


def _stages(BK, BV, a_bytes, b_bytes, v_bytes, chunk=CHUNK):
    """Pipelining depth of the sequential kernels: CONFIG["num_stages"], lowered when the loads of
    one stage are large (fp32, or K = V = 128) so that shared memory suffices."""
    per_stage = chunk * (BK * (a_bytes + b_bytes) + BV * v_bytes)
    fits = 3 if per_stage <= 40 * 1024 else 2 if per_stage <= 72 * 1024 else 1
    return max(1, min(fits, CONFIG["num_stages"] or fits))


def _warps(name, BK, BV, small=4, large=8):
    return _cfg(name, large if BK * BV > 64 * 64 else small)


def _forward_states(k, v, g, initial_state, plan, output_final_state):
    """Chunk-start states, split as local (per segment) + segment-start states."""
    kern = _get_kernels()
    B, T, H, K = k.shape
    V = v.shape[-1]
    NT, NS, NSEG = plan["NT"], plan["NS"], plan["NSEG"]
    BKs, NKs, BV, BT = plan["BKs"], plan["NKs"], plan["BV"], plan["BT"]
    dev = k.device
    f32 = torch.float32
    hl = _empty(B * H, NT, K, V, device=dev, dtype=v.dtype)
    zl = _empty(B * H, NT, K, device=dev, dtype=f32)
    dcy = _empty(B * H, NT, K, device=dev, dtype=f32)
    seg_h = _empty(B * H, NSEG, K, V, device=dev, dtype=f32)
    seg_z = _empty(B * H, NSEG, K, device=dev, dtype=f32)
    seg_d = _empty(B * H, NSEG, K, device=dev, dtype=f32)
    kern._fwd_local_kernel[(NKs, NSEG, B * H)](
        k, v, g, hl, zl, dcy, seg_h, seg_z, seg_d,
        T, NT, NS, H=H, K=K, V=V, BT=BT, BK=BKs, BV=BV, PREC=_prec(v.dtype),
        num_warps=_warps("fwd_local_warps", BKs, BV),
        num_stages=_stages(BKs, BV, k.element_size(), g.element_size(), v.element_size(), plan["BT"]),
    )
    hs = _empty(B * H, NSEG, K, V, device=dev, dtype=f32)
    zs = _empty(B * H, NSEG, K, device=dev, dtype=f32)
    ht = _empty(B, H, K, V + 1, device=dev, dtype=f32) if output_final_state else None
    x0 = initial_state if initial_state is not None else hs  # dummy pointer when unused
    kern._seg_scan_kernel[(NKs, B * H)](
        seg_h, seg_z, seg_d, hs, zs, x0, ht if ht is not None else hs,
        NSEG, K=K, V=V, BK=BKs, BV=BV,
        USE_X0=initial_state is not None, STORE_XT=ht is not None, REVERSE=False,
        num_warps=4, num_stages=2,
    )
    return (hl, zl, dcy, hs, zs, seg_d), ht


def _check(q, k, v, g, initial_state):
    if q.dim() != 4 or k.shape != q.shape or g.shape != q.shape:
        raise ValueError(f"q, k, g must share shape [B, T, H, K]; "
                         f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(g.shape)}")
    if v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must be [B, T, H, V] with q's B, T, H; got {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype; got {q.dtype}, {k.dtype}, {v.dtype}")
    if q.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"unsupported dtype {q.dtype}")
    B, T, H, K = q.shape
    V = v.shape[-1]
    if K > 256 or V > 256:
        raise ValueError("head dims above 256 are not supported")
    if initial_state is not None and tuple(initial_state.shape) != (B, H, K, V + 1):
        raise ValueError(f"initial_state must be [B, H, K, V+1] = {(B, H, K, V + 1)}; got {tuple(initial_state.shape)}")
    if q.device.type != "cuda" and not interpreting():
        raise RuntimeError("normalized_gla (triton) needs CUDA tensors, or TRITON_INTERPRET=1 for CPU tensors")


class NormalizedGLAFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g, scale, initial_state, output_final_state, eps, chunks_per_segment, chunk):
        kern = _get_kernels()
        B, T, H, K = q.shape
        V = v.shape[-1]
        q, k, v, g = (x.contiguous() for x in (q, k, v, g))
        if initial_state is not None:
            initial_state = initial_state.contiguous().float()
        plan = _plan(B, T, H, K, V, q.device, chunks_per_segment, chunk)
        (hl, zl, dcy, hs, zs, _), ht = _forward_states(k, v, g, initial_state, plan, output_final_state)
        o = _empty(*v.shape, device=v.device, dtype=v.dtype)
        need_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1] or ctx.needs_input_grad[2] \
            or ctx.needs_input_grad[3] or ctx.needs_input_grad[5]
        den = _empty(B, T, H, device=q.device, dtype=torch.float32) if need_grad else o
        BK, BV = plan["BK"], plan["BV"]
        kern._fwd_out_kernel[(plan["NT"], B * H)](
            q, k, v, g, hl, zl, dcy, hs, zs, o, den,
            float(scale), float(eps),
            T, plan["NT"], plan["NS"], H=H, K=K, V=V, BT=plan["BT"], BC=BLOCK, BK=BK, BV=BV,
            PREC=_prec(v.dtype), STORE_DEN=need_grad, RANGE=_cfg("factor_range", RANGE),
            num_warps=_warps("fwd_out_warps", BK, BV), num_stages=1,
        )
        if need_grad:
            ctx.save_for_backward(q, k, v, g, o, den, initial_state)
        ctx.scale = float(scale)
        ctx.eps = float(eps)
        ctx.plan = plan
        ctx.has_h0 = initial_state is not None
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        kern = _get_kernels()
        q, k, v, g, o, den, initial_state = ctx.saved_tensors
        plan = ctx.plan
        B, T, H, K = q.shape
        V = v.shape[-1]
        NT, NS, NSEG = plan["NT"], plan["NS"], plan["NSEG"]
        BKs, NKs, BK, BV, BT = plan["BKs"], plan["NKs"], plan["BK"], plan["BV"], plan["BT"]
        dev = q.device
        f32 = torch.float32
        prec = _prec(v.dtype)
        if do is None:
            do = torch.zeros_like(o)
        do = do.contiguous()
        if dht is not None:
            dht = dht.contiguous().float()

        # recompute the forward chunk states
        (hl, zl, dcy, hs, zs, seg_d), _ = _forward_states(k, v, g, initial_state, plan, False)

        # state gradients at chunk ends: local per segment, then a reverse scan over segments
        dhl = _empty(B * H, NT, K, V, device=dev, dtype=v.dtype)
        dzl = _empty(B * H, NT, K, device=dev, dtype=f32)
        ecy = _empty(B * H, NT, K, device=dev, dtype=f32)
        seg_dh = _empty(B * H, NSEG, K, V, device=dev, dtype=f32)
        seg_dz = _empty(B * H, NSEG, K, device=dev, dtype=f32)
        dden = _empty(B, T, H, device=dev, dtype=f32)
        kern._bwd_local_kernel[(NKs, NSEG, B * H)](
            q, g, o, do, den, dden, dhl, dzl, ecy, seg_dh, seg_dz,
            ctx.scale, ctx.eps, T, NT, NS, H=H, K=K, V=V, BT=BT, BK=BKs, BV=BV, PREC=prec,
            num_warps=_warps("bwd_local_warps", BKs, BV),
            num_stages=_stages(BKs, BV, q.element_size(), g.element_size(), do.element_size() + o.element_size(),
                               BT),
        )
        dhs = _empty(B * H, NSEG, K, V, device=dev, dtype=f32)
        dzs = _empty(B * H, NSEG, K, device=dev, dtype=f32)
        dh0 = _empty(B, H, K, V + 1, device=dev, dtype=f32) if ctx.has_h0 else None
        kern._seg_scan_kernel[(NKs, B * H)](
            seg_dh, seg_dz, seg_d, dhs, dzs, dht if dht is not None else dhs, dh0 if dh0 is not None else dhs,
            NSEG, K=K, V=V, BK=BKs, BV=BV,
            USE_X0=dht is not None, STORE_XT=dh0 is not None, REVERSE=True,
            num_warps=4, num_stages=2,
        )

        dq = _empty(*q.shape, device=dev, dtype=q.dtype)
        dk = _empty(*k.shape, device=dev, dtype=k.dtype)
        dv = _empty(*v.shape, device=dev, dtype=v.dtype)
        dg = _empty(*g.shape, device=dev, dtype=g.dtype)
        split = CONFIG["bwd_split"]
        if split is None:  # one pass per output group where tiles are large in fp32 (shared memory)
            split = v.dtype == torch.float32 and BK * BV > 64 * 64
        for do_dqk, do_dv in ([(True, False), (False, True)] if split else [(True, True)]):
            kern._bwd_grad_kernel[(NT, B * H)](
                q, k, v, g, do, den, dden,
                hl, zl, dcy, hs, zs,
                dhl, dzl, ecy, dhs, dzs,
                dq, dk, dv, dg,
                ctx.scale, ctx.eps, T, NT, NS, H=H, K=K, V=V, BT=BT, BC=BLOCK, BK=BK, BV=BV, PREC=prec,
                RANGE=_cfg("factor_range", RANGE), DO_DQK=do_dqk, DO_DV=do_dv,
                num_warps=_warps("bwd_grad_warps", BK, BV, 4, 8), num_stages=1,
            )
        return dq, dk, dv, dg, None, dh0, None, None, None, None


@torch.compiler.disable  # opaque to torch.compile (see lawcat.ops.fla_backend)
def normalized_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, eps=1e-6,
                   chunks_per_segment=None, chunk=None):
    """Normalized gated linear attention, LAWCAT Eq. 8, with num and den in one pass.

    Args:
        q, k, g: [B, T, H, K]; g is the log decay (<= 0), any float dtype (read as fp32).
        v: [B, T, H, V]; q, k, v share a dtype (fp32, bf16 or fp16).
        scale: defaults to K ** -0.5; multiplies num and den alike.
        initial_state: optional [B, H, K, V+1] float32, last column z.
        output_final_state: also return the final [B, H, K, V+1] float32 state.
        eps: o = num / (den + eps).
        chunks_per_segment: tuning/testing knob for the two-level state scan (default: automatic).
        chunk: rows per chunk, 64, 32 or 16 (default 64; 16 for fp32 with head dims above 64); exact for any gate
            g <= 0 at every chunk size.
    Returns:
        (o [B, T, H, V] in v.dtype, final_state or None)

    Differentiable w.r.t. q, k, v, g and initial_state.  Needs CUDA tensors (or CPU tensors with
    TRITON_INTERPRET=1 set before the first call).
    """
    _check(q, k, v, g, initial_state)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if chunk is None:
        # fp32 with head dims above 64: 64-row tiles exceed an H200's shared memory (the output kernel asks for
        # 240 KB of 227) and 32-row tiles did too, so 16 rows, a quarter of the 64-row tiles; that size is tested
        # under the Triton interpreter only, which is why lawcat.ops.gla sends this case to fla on CUDA
        chunk = CHUNK if q.dtype != torch.float32 or max(q.shape[-1], v.shape[-1]) <= 64 else 16
    elif chunk not in _CHUNKS:
        raise ValueError(f"chunk must be one of {_CHUNKS}, got {chunk}")
    o, ht = NormalizedGLAFunction.apply(q, k, v, g, scale, initial_state, output_final_state, eps,
                                        chunks_per_segment, chunk)
    return o, ht
