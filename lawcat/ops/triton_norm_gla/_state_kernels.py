"""The sequential state passes of normalized GLA (see ``_kernels``): chunk-start states forward, state
gradients backward, and the short scan over segments that links them."""

import triton
import triton.language as tl


@triton.jit
def _fwd_local_kernel(
    k, v, g, hl, zl, dcy, seg_h, seg_z, seg_d,
    T, NT, NS,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr,
):
    i_k, i_s, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b = i_bh // H
    i_h = i_bh % H
    NSEG = tl.num_programs(1)
    o_t = tl.arange(0, BT)
    o_k = i_k * BK + tl.arange(0, BK)
    o_v = tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_kv = m_k[:, None] & m_v[None, :]

    b_h = tl.zeros([BK, BV], dtype=tl.float32)
    b_z = tl.zeros([BK], dtype=tl.float32)
    b_d = tl.full([BK], 1.0, dtype=tl.float32)

    c0 = i_s * NS
    c1 = tl.minimum(c0 + NS, NT)
    for c in range(c0, c1):
        p_c = i_bh.to(tl.int64) * NT + c
        tl.store(hl + p_c * (K * V) + o_k[:, None] * V + o_v[None, :], b_h.to(hl.dtype.element_ty), mask=m_kv)
        tl.store(zl + p_c * K + o_k, b_z, mask=m_k)
        tl.store(dcy + p_c * K + o_k, b_d, mask=m_k)

        row0 = (i_b.to(tl.int64) * T + c * BT) * H + i_h
        m_t = (c * BT + o_t) < T
        off_k = row0 * K + o_t[:, None] * (H * K) + o_k[None, :]
        off_v = row0 * V + o_t[:, None] * (H * V) + o_v[None, :]
        m_tk = m_t[:, None] & m_k[None, :]
        b_k = tl.load(k + off_k, mask=m_tk, other=0.).to(tl.float32)
        b_g = tl.load(g + off_k, mask=m_tk, other=0.).to(tl.float32)
        b_v = tl.load(v + off_v, mask=m_t[:, None] & m_v[None, :], other=0.)

        b_G = tl.cumsum(b_g, axis=0)
        b_gl = tl.sum(b_g, axis=0)
        b_kh = b_k * tl.exp(tl.minimum(b_gl[None, :] - b_G, 0.))
        b_e = tl.exp(b_gl)
        b_h = b_h * b_e[:, None] + tl.dot(tl.trans(b_kh.to(b_v.dtype)), b_v, input_precision=PREC)
        b_z = b_z * b_e + tl.sum(b_kh, axis=0)
        b_d = b_d * b_e

    p_s = i_bh.to(tl.int64) * NSEG + i_s
    tl.store(seg_h + p_s * (K * V) + o_k[:, None] * V + o_v[None, :], b_h, mask=m_kv)
    tl.store(seg_z + p_s * K + o_k, b_z, mask=m_k)
    tl.store(seg_d + p_s * K + o_k, b_d, mask=m_k)


@triton.jit
def _seg_scan_kernel(
    seg_h, seg_z, seg_d, out_h, out_z, x0, xT,
    NSEG,
    K: tl.constexpr, V: tl.constexpr,
    BK: tl.constexpr, BV: tl.constexpr,
    USE_X0: tl.constexpr, STORE_XT: tl.constexpr, REVERSE: tl.constexpr,
):
    """X_{next} = d_j * X + L_j over the segments, storing X before each step.

    Forward: X is the state at each segment start; x0 the initial state, xT the final state.
    Reverse: X is the gradient w.r.t. the state at each segment end; x0 the gradient of the final
    state, xT the gradient of the initial state.  x0 / xT are [B*H, K, V+1] fp32 (last column z).
    """
    i_k, i_bh = tl.program_id(0), tl.program_id(1)
    o_k = i_k * BK + tl.arange(0, BK)
    o_v = tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    p_x = i_bh.to(tl.int64) * (K * (V + 1))
    if USE_X0:
        b_x = tl.load(x0 + p_x + o_k[:, None] * (V + 1) + o_v[None, :], mask=m_kv, other=0.).to(tl.float32)
        b_xz = tl.load(x0 + p_x + o_k * (V + 1) + V, mask=m_k, other=0.).to(tl.float32)
    else:
        b_x = tl.zeros([BK, BV], dtype=tl.float32)
        b_xz = tl.zeros([BK], dtype=tl.float32)
    for jj in range(0, NSEG):
        if REVERSE:
            j = NSEG - 1 - jj
        else:
            j = jj
        p_s = i_bh.to(tl.int64) * NSEG + j
        tl.store(out_h + p_s * (K * V) + o_k[:, None] * V + o_v[None, :], b_x, mask=m_kv)
        tl.store(out_z + p_s * K + o_k, b_xz, mask=m_k)
        b_l = tl.load(seg_h + p_s * (K * V) + o_k[:, None] * V + o_v[None, :], mask=m_kv, other=0.)
        b_lz = tl.load(seg_z + p_s * K + o_k, mask=m_k, other=0.)
        b_d = tl.load(seg_d + p_s * K + o_k, mask=m_k, other=0.)
        b_x = b_x * b_d[:, None] + b_l
        b_xz = b_xz * b_d + b_lz
    if STORE_XT:
        tl.store(xT + p_x + o_k[:, None] * (V + 1) + o_v[None, :], b_x, mask=m_kv)
        tl.store(xT + p_x + o_k * (V + 1) + V, b_xz, mask=m_k)


@triton.jit
def _bwd_local_kernel(
    q, g, o, do, den, dden, dhl, dzl, ecy, seg_dh, seg_dz,
    scale, eps,
    T, NT, NS,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr,
):
    """Per segment, backwards over its chunks: gradient w.r.t. the state at each chunk end from the
    chunks after it inside the segment (zero at the segment end), the decay from each chunk end to
    the segment end, and at the end the segment-local gradient w.r.t. the segment-start state."""
    i_k, i_s, i_bh = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_b = i_bh // H
    i_h = i_bh % H
    NSEG = tl.num_programs(1)
    o_t = tl.arange(0, BT)
    o_k = i_k * BK + tl.arange(0, BK)
    o_v = tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_kv = m_k[:, None] & m_v[None, :]

    b_dh = tl.zeros([BK, BV], dtype=tl.float32)
    b_dz = tl.zeros([BK], dtype=tl.float32)
    b_e = tl.full([BK], 1.0, dtype=tl.float32)

    c0 = i_s * NS
    c1 = tl.minimum(c0 + NS, NT)
    for cc in range(0, c1 - c0):
        c = c1 - 1 - cc
        p_c = i_bh.to(tl.int64) * NT + c
        tl.store(dhl + p_c * (K * V) + o_k[:, None] * V + o_v[None, :], b_dh.to(dhl.dtype.element_ty), mask=m_kv)
        tl.store(dzl + p_c * K + o_k, b_dz, mask=m_k)
        tl.store(ecy + p_c * K + o_k, b_e, mask=m_k)

        row0 = (i_b.to(tl.int64) * T + c * BT) * H + i_h
        m_t = (c * BT + o_t) < T
        off_k = row0 * K + o_t[:, None] * (H * K) + o_k[None, :]
        off_v = row0 * V + o_t[:, None] * (H * V) + o_v[None, :]
        m_tk = m_t[:, None] & m_k[None, :]
        m_tv = m_t[:, None] & m_v[None, :]
        b_q = tl.load(q + off_k, mask=m_tk, other=0.).to(tl.float32)
        b_g = tl.load(g + off_k, mask=m_tk, other=0.).to(tl.float32)
        b_do = tl.load(do + off_v, mask=m_tv, other=0.)
        DT = b_do.dtype
        b_do = b_do.to(tl.float32)
        b_o = tl.load(o + off_v, mask=m_tv, other=0.).to(tl.float32)
        b_r = 1.0 / (tl.load(den + row0 + o_t * H, mask=m_t, other=1.) + eps)
        b_dnum = b_do * b_r[:, None]
        b_dden = -b_r * tl.sum(b_do * b_o, axis=1)
        if i_k == 0:
            tl.store(dden + row0 + o_t * H, b_dden, mask=m_t)

        b_G = tl.cumsum(b_g, axis=0)
        b_gl = tl.sum(b_g, axis=0)
        b_qe = b_q * tl.exp(b_G) * scale
        b_el = tl.exp(b_gl)
        b_dh = b_dh * b_el[:, None] + tl.dot(tl.trans(b_qe.to(DT)), b_dnum.to(DT), input_precision=PREC)
        b_dz = b_dz * b_el + tl.sum(b_qe * b_dden[:, None], axis=0)
        b_e = b_e * b_el

    p_s = i_bh.to(tl.int64) * NSEG + i_s
    tl.store(seg_dh + p_s * (K * V) + o_k[:, None] * V + o_v[None, :], b_dh, mask=m_kv)
    tl.store(seg_dz + p_s * K + o_k, b_dz, mask=m_k)
