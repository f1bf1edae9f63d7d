"""The fused decode-step kernel (see ``ops.py``). Imported on first use: it imports triton at the top."""

import triton
import triton.language as tl


@triton.jit
def _hedgehog(y, w_map, head, o_d, o_f, m_d, m_f, D: tl.constexpr, HALF: tl.constexpr):
    """[softmax(y M), softmax(-y M)] of one row y [BD] with M = w_map[head] [D, D/2]; returns the two halves."""
    b_m = tl.load(w_map + head.to(tl.int64) * (D * HALF) + o_d[:, None] * HALF + o_f[None, :],
                  mask=m_d[:, None] & m_f[None, :], other=0.).to(tl.float32)
    p = tl.sum(y[:, None] * b_m, axis=0)                                   # [BH]
    pos = tl.where(m_f, p, float("-inf"))
    e = tl.exp(pos - tl.max(pos, axis=0))
    pos = e / tl.sum(e, axis=0)
    neg = tl.where(m_f, -p, float("-inf"))
    e = tl.exp(neg - tl.max(neg, axis=0))
    neg = e / tl.sum(e, axis=0)
    return pos, neg


@triton.jit
def _conv_row(x_now, state, w_conv, row0, o_d, m_d, i_b, CH: tl.constexpr, W: tl.constexpr):
    """The causal conv's output for the current token of one head: taps 0..W-2 read the carried rows (oldest
    first), tap W-1 the current row x_now; row0 is the head's first channel."""
    y = x_now * tl.load(w_conv + (row0 + o_d) * W + (W - 1), mask=m_d, other=0.).to(tl.float32)
    for j in tl.static_range(W - 1):
        s = tl.load(state + (i_b.to(tl.int64) * (W - 1) + j) * CH + row0 + o_d, mask=m_d, other=0.).to(tl.float32)
        y += s * tl.load(w_conv + (row0 + o_d) * W + j, mask=m_d, other=0.).to(tl.float32)
    return y


@triton.jit
def _shift_state(x_now, state, row0, o_d, m_d, i_b, CH: tl.constexpr, W: tl.constexpr):
    """Drop the oldest carried row of one head and append the current one (after every read of the old rows)."""
    for j in tl.static_range(W - 2):
        s = tl.load(state + (i_b.to(tl.int64) * (W - 1) + j + 1) * CH + row0 + o_d, mask=m_d, other=0.)
        tl.store(state + (i_b.to(tl.int64) * (W - 1) + j) * CH + row0 + o_d, s, mask=m_d)
    tl.store(state + (i_b.to(tl.int64) * (W - 1) + W - 2) * CH + row0 + o_d,
             x_now.to(state.dtype.element_ty), mask=m_d)


@triton.jit
def _decode_kernel(
    q, k, v, gate, tok_mask, conv_q, conv_k, w_conv_q, w_conv_k, w_map_q, w_map_k, S, out,
    inv_normalizer, eps,
    H: tl.constexpr, HKV: tl.constexpr, GROUPS: tl.constexpr, D: tl.constexpr, HALF: tl.constexpr,
    V: tl.constexpr, W: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr, BV: tl.constexpr,
    HAS_GATE: tl.constexpr, HAS_MASK: tl.constexpr, NORMALIZE: tl.constexpr, SHIFT_K: tl.constexpr,
):
    """One program per (batch row, query head), all independent: a decode step is latency-bound, so every head
    runs at once and every load is issued up front. The program owns its head's state S [D, V + 1] (float32, the
    last column the normalizer z) and its query's carried rows; the key's rows are shared by GROUPS heads, so
    they are shifted here only when no other program reads them (SHIFT_K: GROUPS == 1), else by _shift_kernel."""
    i_b, i_h = tl.program_id(0), tl.program_id(1)
    i_kv = i_h // GROUPS
    o_d = tl.arange(0, BD)
    o_f = tl.arange(0, BH)
    o_v = tl.arange(0, BV)
    m_d, m_f, m_v = o_d < D, o_f < HALF, o_v < V
    m_fv = m_f[:, None] & m_v[None, :]

    q_now = tl.load(q + (i_b.to(tl.int64) * H + i_h) * D + o_d, mask=m_d, other=0.).to(tl.float32)
    k_now = tl.load(k + (i_b.to(tl.int64) * HKV + i_kv) * D + o_d, mask=m_d, other=0.).to(tl.float32)
    v_now = tl.load(v + (i_b.to(tl.int64) * HKV + i_kv) * V + o_v, mask=m_v, other=0.).to(tl.float32)
    if HAS_MASK:  # a padded token, as lawcat_attention treats it: zero inputs (the conv rows shift in a zero row),
        m_tok = tl.load(tok_mask + i_b).to(tl.float32)  # no key in the state, no decay
        q_now, k_now, v_now = q_now * m_tok, k_now * m_tok, v_now * m_tok
    # feature rows 0..D/2-1 are the positive half of the map, D/2..D-1 the negative one
    base = (i_b.to(tl.int64) * H + i_h) * D * (V + 1)
    p_lo = S + base + o_f[:, None] * (V + 1) + o_v[None, :]
    p_hi = p_lo + HALF * (V + 1)
    p_zlo = S + base + o_f * (V + 1) + V
    p_zhi = p_zlo + HALF * (V + 1)
    s_lo = tl.load(p_lo, mask=m_fv, other=0.)
    s_hi = tl.load(p_hi, mask=m_fv, other=0.)
    z_lo = tl.load(p_zlo, mask=m_f, other=0.)
    z_hi = tl.load(p_zhi, mask=m_f, other=0.)

    q_c = _conv_row(q_now, conv_q, w_conv_q, i_h * D, o_d, m_d, i_b, H * D, W)
    k_c = _conv_row(k_now, conv_k, w_conv_k, i_kv * D, o_d, m_d, i_b, HKV * D, W)
    fq_pos, fq_neg = _hedgehog(q_c, w_map_q, i_h, o_d, o_f, m_d, m_f, D, HALF)
    fk_pos, fk_neg = _hedgehog(k_c, w_map_k, i_h, o_d, o_f, m_d, m_f, D, HALF)
    if HAS_MASK:  # the map of a zero key is not zero
        fk_pos, fk_neg = fk_pos * m_tok, fk_neg * m_tok

    if HAS_GATE:
        g_p = gate + (i_b.to(tl.int64) * H + i_h) * D
        a_lo = tl.load(g_p + o_f, mask=m_f, other=0.).to(tl.float32)
        a_hi = tl.load(g_p + HALF + o_f, mask=m_f, other=0.).to(tl.float32)
        # log-sigmoid(a) = min(a, 0) - log(1 + exp(-|a|)), then the normalizer; the decay is exp of that
        d_lo = tl.exp((tl.minimum(a_lo, 0.) - tl.log(1. + tl.exp(-tl.abs(a_lo)))) * inv_normalizer)
        d_hi = tl.exp((tl.minimum(a_hi, 0.) - tl.log(1. + tl.exp(-tl.abs(a_hi)))) * inv_normalizer)
        if HAS_MASK:  # g * mask: no decay over a padded token
            d_lo = tl.where(m_tok > 0., d_lo, 1.)
            d_hi = tl.where(m_tok > 0., d_hi, 1.)
        s_lo, s_hi = s_lo * d_lo[:, None], s_hi * d_hi[:, None]
        z_lo, z_hi = z_lo * d_lo, z_hi * d_hi
    s_lo += fk_pos[:, None] * v_now[None, :]
    s_hi += fk_neg[:, None] * v_now[None, :]
    z_lo += fk_pos
    z_hi += fk_neg
    tl.store(p_lo, s_lo, mask=m_fv)
    tl.store(p_hi, s_hi, mask=m_fv)
    tl.store(p_zlo, z_lo, mask=m_f)
    tl.store(p_zhi, z_hi, mask=m_f)

    num = tl.sum(fq_pos[:, None] * s_lo, axis=0) + tl.sum(fq_neg[:, None] * s_hi, axis=0)   # [BV]
    if NORMALIZE:
        num = num / (tl.sum(fq_pos * z_lo, axis=0) + tl.sum(fq_neg * z_hi, axis=0) + eps)
    tl.store(out + (i_b.to(tl.int64) * H + i_h) * V + o_v, num.to(out.dtype.element_ty), mask=m_v)

    tl.debug_barrier()  # every lane has read the old rows before any is overwritten
    _shift_state(q_now, conv_q, i_h * D, o_d, m_d, i_b, H * D, W)
    if SHIFT_K:
        _shift_state(k_now, conv_k, i_kv * D, o_d, m_d, i_b, HKV * D, W)


@triton.jit
def _shift_kernel(k, tok_mask, conv_k, HKV: tl.constexpr, D: tl.constexpr, W: tl.constexpr, BD: tl.constexpr,
                  HAS_MASK: tl.constexpr):
    """The key's carried rows shifted by one, the token appended: after _decode_kernel has read them (GQA)."""
    i_b, i_kv = tl.program_id(0), tl.program_id(1)
    o_d = tl.arange(0, BD)
    m_d = o_d < D
    k_now = tl.load(k + (i_b.to(tl.int64) * HKV + i_kv) * D + o_d, mask=m_d, other=0.).to(tl.float32)
    if HAS_MASK:
        k_now = k_now * tl.load(tok_mask + i_b).to(tl.float32)
    _shift_state(k_now, conv_k, i_kv * D, o_d, m_d, i_b, HKV * D, W)
