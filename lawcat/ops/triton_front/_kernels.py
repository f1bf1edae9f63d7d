"""The fused conv + Hedgehog map kernel (see ``ops.py``). Imported on first use: it imports triton at the top."""

import triton
import triton.language as tl


@triton.jit
def _conv_map_kernel(
    x, state, mask, w_conv, w_map, out,
    T,
    HX: tl.constexpr, HO: tl.constexpr, GROUPS: tl.constexpr, D: tl.constexpr, HALF: tl.constexpr,
    W: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr,
    HAS_STATE: tl.constexpr, HAS_MASK: tl.constexpr, MASK_OUT: tl.constexpr, PREC: tl.constexpr,
):
    """One block of BT tokens of one output head: y = causal conv of x's head ho // GROUPS (x masked first), then
    out = [softmax(y M), softmax(-y M)] with M = w_map[ho] (D x D/2), masked again when MASK_OUT."""
    i_t, i_bh = tl.program_id(0), tl.program_id(1)
    i_b = i_bh // HO
    i_o = i_bh % HO
    i_x = i_o // GROUPS
    o_t = i_t * BT + tl.arange(0, BT)
    o_d = tl.arange(0, BD)
    o_f = tl.arange(0, BH)
    m_d = o_d < D
    m_f = o_f < HALF
    m_t = o_t < T

    # causal conv: tap W-1 multiplies the current token; rows before the chunk come from the carried state
    b_y = tl.zeros([BT, BD], dtype=tl.float32)
    for j in tl.static_range(W):
        src = o_t - (W - 1) + j  # token read by tap j
        m_in = (src >= 0) & (src < T)
        b_x = tl.load(x + ((i_b.to(tl.int64) * T + src) * HX + i_x)[:, None] * D + o_d[None, :],
                      mask=m_in[:, None] & m_d[None, :], other=0.).to(tl.float32)
        if HAS_MASK:
            b_x *= tl.load(mask + i_b.to(tl.int64) * T + src, mask=m_in, other=0.).to(tl.float32)[:, None]
        if HAS_STATE:
            m_s = src < 0  # state rows hold the W-1 tokens before this chunk, oldest first
            b_x += tl.load(state + (i_b.to(tl.int64) * (W - 1) + (W - 1) + src)[:, None] * (HX * D) + i_x * D
                           + o_d[None, :], mask=m_s[:, None] & m_d[None, :], other=0.).to(tl.float32)
        b_w = tl.load(w_conv + (i_x * D + o_d) * W + j, mask=m_d, other=0.).to(tl.float32)
        b_y += b_x * b_w[None, :]

    # Hedgehog map: one head's D x D/2 product, then a softmax over each half
    b_m = tl.load(w_map + i_o.to(tl.int64) * (D * HALF) + o_d[:, None] * HALF + o_f[None, :],
                  mask=m_d[:, None] & m_f[None, :], other=0.).to(tl.float32)
    b_p = tl.dot(b_y, b_m, input_precision=PREC)
    b_p = tl.where(m_f[None, :], b_p, float("-inf"))
    b_e = tl.exp(b_p - tl.max(b_p, axis=1)[:, None])
    b_pos = b_e / tl.sum(b_e, axis=1)[:, None]
    b_n = tl.where(m_f[None, :], -b_p, float("-inf"))
    b_e = tl.exp(b_n - tl.max(b_n, axis=1)[:, None])
    b_neg = b_e / tl.sum(b_e, axis=1)[:, None]
    if MASK_OUT:
        b_mo = tl.load(mask + i_b.to(tl.int64) * T + o_t, mask=m_t, other=0.).to(tl.float32)
        b_pos *= b_mo[:, None]
        b_neg *= b_mo[:, None]
    p_out = out + ((i_b.to(tl.int64) * T + o_t) * HO + i_o)[:, None] * D + o_f[None, :]
    m_out = m_t[:, None] & m_f[None, :]
    tl.store(p_out, b_pos.to(out.dtype.element_ty), mask=m_out)
    tl.store(p_out + HALF, b_neg.to(out.dtype.element_ty), mask=m_out)
