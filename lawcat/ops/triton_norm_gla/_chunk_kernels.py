"""The per-chunk passes of normalized GLA (see ``_kernels``): outputs forward, all input gradients backward, each
chunk in its cheapest exact form."""

import triton
import triton.language as tl


@triton.jit
def _token_row(ptr, offset, o_d, m_d, position, T):
    """One token's vector at element `offset` (+ o_d, masked by m_d) in fp32, zeros when `position` >= T."""
    return tl.load(ptr + offset + o_d, mask=m_d & (position + 0 * o_d < T), other=0.).to(tl.float32)


@triton.jit
def _fwd_out_kernel(
    q, k, v, g, hl, zl, dcy, hs, zs, o, den,
    scale, eps,
    T, NT, NS,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
    BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr, STORE_DEN: tl.constexpr, RANGE: tl.constexpr,
):
    """o and den of one chunk: in one product when its decays allow, else block by block (module docstring)."""
    i_c, i_bh = tl.program_id(0), tl.program_id(1)
    i_b = i_bh // H
    i_h = i_bh % H
    NSEG = (NT + NS - 1) // NS
    i_s = i_c // NS
    o_t = tl.arange(0, BT)
    o_r = tl.arange(0, BC)
    o_k = tl.arange(0, BK)
    o_v = tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    m_t = (i_c * BT + o_t) < T
    m_tk = m_t[:, None] & m_k[None, :]
    m_tv = m_t[:, None] & m_v[None, :]

    row0 = (i_b.to(tl.int64) * T + i_c * BT) * H + i_h
    off_k = row0 * K + o_t[:, None] * (H * K) + o_k[None, :]
    off_v = row0 * V + o_t[:, None] * (H * V) + o_v[None, :]
    b_k = tl.load(k + off_k, mask=m_tk, other=0.).to(tl.float32)
    b_v = tl.load(v + off_v, mask=m_tv, other=0.)
    DT = b_v.dtype
    b_G = tl.cumsum(tl.load(g + off_k, mask=m_tk, other=0.).to(tl.float32), axis=0)

    # state at the chunk start: local (segment-relative) part + decayed segment-start state
    p_c = i_bh.to(tl.int64) * NT + i_c
    p_s = i_bh.to(tl.int64) * NSEG + i_s
    b_dc = tl.load(dcy + p_c * K + o_k, mask=m_k, other=0.)
    b_h = tl.load(hl + p_c * (K * V) + o_k[:, None] * V + o_v[None, :], mask=m_kv, other=0.).to(tl.float32)
    b_h += b_dc[:, None] * tl.load(hs + p_s * (K * V) + o_k[:, None] * V + o_v[None, :], mask=m_kv, other=0.)
    b_h = b_h.to(DT)
    b_z = tl.load(zl + p_c * K + o_k, mask=m_k, other=0.)
    b_z += b_dc * tl.load(zs + p_s * K + o_k, mask=m_k, other=0.)

    # factors around the middle row stay within e^RANGE: the whole chunk in one product
    b_Gr = tl.sum(tl.where((o_t == BT // 2 - 1)[:, None], b_G, 0.), axis=0)
    if tl.max(tl.max(tl.abs(b_G - b_Gr[None, :]), axis=1), axis=0) <= RANGE:
        b_q = tl.load(q + off_k, mask=m_tk, other=0.).to(tl.float32)
        b_qe = b_q * tl.exp(b_G)
        b_num = tl.dot(b_qe.to(DT), b_h, input_precision=PREC)
        b_den = tl.sum(b_qe * b_z[None, :], axis=1)
        b_dG = b_G - b_Gr[None, :]
        b_A = tl.dot((b_q * tl.exp(b_dG)).to(DT), tl.trans((b_k * tl.exp(-b_dG)).to(DT)), input_precision=PREC)
        b_A = tl.where(o_t[:, None] >= o_t[None, :], b_A, 0.)
        b_num += tl.dot(b_A.to(DT), b_v, input_precision=PREC)
        b_den += tl.sum(b_A, axis=1)
        b_num = b_num * scale
        b_den = b_den * scale
        tl.store(o + off_v, (b_num / (b_den + eps)[:, None]).to(o.dtype.element_ty), mask=m_tv)
        if STORE_DEN:
            tl.store(den + row0 + o_t * H, b_den, mask=m_t)
    else:
        b_gb = tl.zeros([BK], dtype=tl.float32)  # cumulative decay before the current block
        for i in range(0, BT // BC):
            r0 = i * BC
            m_r = (i_c * BT + r0 + o_r) < T
            m_rk = m_r[:, None] & m_k[None, :]
            m_rv = m_r[:, None] & m_v[None, :]
            off_rk = row0 * K + (r0 + o_r)[:, None] * (H * K) + o_k[None, :]
            off_rv = row0 * V + (r0 + o_r)[:, None] * (H * V) + o_v[None, :]
            b_q = tl.load(q + off_rk, mask=m_rk, other=0.).to(tl.float32)
            b_gi = tl.load(g + off_rk, mask=m_rk, other=0.).to(tl.float32)
            b_Gi = b_gb[None, :] + tl.cumsum(b_gi, axis=0)

            # the state from before the chunk
            b_qe = b_q * tl.exp(b_Gi)
            b_num = tl.dot(b_qe.to(DT), b_h, input_precision=PREC)
            b_den = tl.sum(b_qe * b_z[None, :], axis=1)
            # earlier blocks: exp(G_t - G_s) = exp(G_t - G_b) * exp(G_b - G_s), both <= 1 (G_b at the block start)
            if r0 > 0:
                b_qs = (b_q * tl.exp(b_Gi - b_gb[None, :])).to(DT)
                b_ks = tl.where((o_t < r0)[:, None], b_k * tl.exp(tl.minimum(b_gb[None, :] - b_G, 0.)), 0.).to(DT)
                b_A = tl.dot(b_qs, tl.trans(b_ks), input_precision=PREC)
                b_num += tl.dot(b_A.to(DT), b_v, input_precision=PREC)
                b_den += tl.sum(b_A, axis=1)
            # the block itself: factored around its middle row where that stays within e^RANGE, else pair by pair
            b_Gm = tl.sum(tl.where((o_r == BC // 2 - 1)[:, None], b_Gi, 0.), axis=0)
            if tl.max(tl.max(tl.abs(b_Gi - b_Gm[None, :]), axis=1), axis=0) <= RANGE:
                b_kb = tl.load(k + off_rk, mask=m_rk, other=0.).to(tl.float32)
                b_vb = tl.load(v + off_rv, mask=m_rv, other=0.)
                b_A = tl.dot((b_q * tl.exp(b_Gi - b_Gm[None, :])).to(DT),
                             tl.trans((b_kb * tl.exp(b_Gm[None, :] - b_Gi)).to(DT)), input_precision=PREC)
                b_A = tl.where(o_r[:, None] >= o_r[None, :], b_A, 0.)
                b_num += tl.dot(b_A.to(DT), b_vb, input_precision=PREC)
                b_den += tl.sum(b_A, axis=1)
            else:
                for j in range(0, BC):
                    p_j = row0 + (r0 + j) * H
                    b_kj = _token_row(k, p_j * K, o_k, m_k, i_c * BT + r0 + j, T)
                    b_vj = _token_row(v, p_j * V, o_v, m_v, i_c * BT + r0 + j, T)
                    b_Gj = tl.sum(tl.where((o_r == j)[:, None], b_Gi, 0.), axis=0)
                    b_a = tl.sum(b_q * b_kj[None, :] * tl.exp(tl.minimum(b_Gi - b_Gj[None, :], 0.)), axis=1)
                    b_a = tl.where(o_r >= j, b_a, 0.)
                    b_num += b_a[:, None] * b_vj[None, :]
                    b_den += b_a
            b_gb += tl.sum(b_gi, axis=0)

            b_num = b_num * scale
            b_den = b_den * scale
            tl.store(o + off_rv, (b_num / (b_den + eps)[:, None]).to(o.dtype.element_ty), mask=m_rv)
            if STORE_DEN:
                tl.store(den + row0 + (r0 + o_r) * H, b_den, mask=m_r)


@triton.jit
def _bwd_grad_kernel(
    q, k, v, g, do, den, dden,
    hl, zl, dcy, hs, zs,
    dhl, dzl, ecy, dhs, dzs,
    dq, dk, dv, dg,
    scale, eps,
    T, NT, NS,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
    BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr, RANGE: tl.constexpr, DO_DQK: tl.constexpr, DO_DV: tl.constexpr,
):
    """dq, dk and dg (DO_DQK) and/or dv (DO_DV) of one chunk: in whole-chunk products when its decays allow, else
    block by block, the last block first (dg is a reverse cumsum inside the chunk). Two passes, one per flag, hold
    fewer tiles at once than one (fp32 with wide heads needs that for shared memory)."""
    i_c, i_bh = tl.program_id(0), tl.program_id(1)
    i_b = i_bh // H
    i_h = i_bh % H
    NSEG = (NT + NS - 1) // NS
    i_s = i_c // NS
    o_t = tl.arange(0, BT)
    o_r = tl.arange(0, BC)
    o_k = tl.arange(0, BK)
    o_v = tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    m_t = (i_c * BT + o_t) < T
    m_tk = m_t[:, None] & m_k[None, :]
    m_tv = m_t[:, None] & m_v[None, :]

    row0 = (i_b.to(tl.int64) * T + i_c * BT) * H + i_h
    off_k = row0 * K + o_t[:, None] * (H * K) + o_k[None, :]
    off_v = row0 * V + o_t[:, None] * (H * V) + o_v[None, :]
    b_do = tl.load(do + off_v, mask=m_tv, other=0.)
    DT = b_do.dtype
    b_r = 1.0 / (tl.load(den + row0 + o_t * H, mask=m_t, other=1.) + eps)
    b_dnum = (b_do.to(tl.float32) * b_r[:, None]).to(DT)
    b_dd = tl.load(dden + row0 + o_t * H, mask=m_t, other=0.)

    p_c = i_bh.to(tl.int64) * NT + i_c
    p_s = i_bh.to(tl.int64) * NSEG + i_s
    # gradient w.r.t. the state at the chunk end, and the state at the chunk start
    b_ec = tl.load(ecy + p_c * K + o_k, mask=m_k, other=0.)
    b_dh = tl.load(dhl + p_c * (K * V) + o_k[:, None] * V + o_v[None, :], mask=m_kv, other=0.).to(tl.float32)
    b_dh += b_ec[:, None] * tl.load(dhs + p_s * (K * V) + o_k[:, None] * V + o_v[None, :], mask=m_kv, other=0.)
    b_dz = tl.load(dzl + p_c * K + o_k, mask=m_k, other=0.)
    b_dz += b_ec * tl.load(dzs + p_s * K + o_k, mask=m_k, other=0.)
    b_dc = tl.load(dcy + p_c * K + o_k, mask=m_k, other=0.)
    b_h = tl.load(hl + p_c * (K * V) + o_k[:, None] * V + o_v[None, :], mask=m_kv, other=0.).to(tl.float32)
    b_h += b_dc[:, None] * tl.load(hs + p_s * (K * V) + o_k[:, None] * V + o_v[None, :], mask=m_kv, other=0.)
    b_z = tl.load(zl + p_c * K + o_k, mask=m_k, other=0.)
    b_z += b_dc * tl.load(zs + p_s * K + o_k, mask=m_k, other=0.)

    b_q = tl.load(q + off_k, mask=m_tk, other=0.)
    b_k = tl.load(k + off_k, mask=m_tk, other=0.)
    b_v = tl.load(v + off_v, mask=m_tv, other=0.)
    b_G = tl.cumsum(tl.load(g + off_k, mask=m_tk, other=0.).to(tl.float32), axis=0)
    b_gl = tl.sum(tl.where((o_t == BT - 1)[:, None], b_G, 0.), axis=0)
    b_hb = b_h.to(DT)
    b_dhb = b_dh.to(DT)

    if DO_DQK:
        # dg boundary term rowsum(S^_end * dS^_end), S^_end = e^{G_L} S^_start + sum_s (k_s e^{G_L-G_s})^T v^_s
        b_bnd = tl.exp(b_gl) * (tl.sum(b_h * b_dh, axis=1) + b_z * b_dz)
        b_dki = tl.exp(tl.minimum(b_gl[None, :] - b_G, 0.)) * \
            (tl.dot(b_v, tl.trans(b_dhb), input_precision=PREC) + b_dz[None, :])
        b_bnd += tl.sum(b_k.to(tl.float32) * b_dki, axis=0)

    b_Gr = tl.sum(tl.where((o_t == BT // 2 - 1)[:, None], b_G, 0.), axis=0)
    if tl.max(tl.max(tl.abs(b_G - b_Gr[None, :]), axis=1), axis=0) <= RANGE:
        # the whole chunk at once, factors around the middle row
        m_causal = o_t[:, None] >= o_t[None, :]
        b_qt = (b_q.to(tl.float32) * tl.exp(b_G - b_Gr[None, :])).to(DT)
        b_kt = (b_k.to(tl.float32) * tl.exp(b_Gr[None, :] - b_G)).to(DT)
        if DO_DV:
            # dv = A^T dnum + (k e^{G_L - G}) dh
            b_A = tl.dot(b_qt, tl.trans(b_kt), input_precision=PREC)
            b_A = tl.where(m_causal, b_A * scale, 0.).to(DT)
            b_dv = tl.dot(tl.trans(b_A), b_dnum, input_precision=PREC)
            b_kh = (b_k.to(tl.float32) * tl.exp(tl.minimum(b_gl[None, :] - b_G, 0.))).to(DT)
            b_dv += tl.dot(b_kh, b_dhb, input_precision=PREC)
            tl.store(dv + off_v, b_dv.to(dv.dtype.element_ty), mask=m_tv)
        if DO_DQK:
            # intra-chunk score gradient dP_ts = scale * (dnum_t . v_s + dden_t), s <= t
            b_dP = tl.dot(b_dnum, tl.trans(b_v), input_precision=PREC) + b_dd[:, None]
            b_dP = tl.where(m_causal, b_dP * scale, 0.).to(DT)
            # dq = scale e^G (dnum h^T + dden z) + e^{G-Gr} (dP kt)
            b_dq = tl.dot(b_dnum, tl.trans(b_hb), input_precision=PREC) + b_dd[:, None] * b_z[None, :]
            b_dq = b_dq * (tl.exp(b_G) * scale) + tl.exp(b_G - b_Gr[None, :]) * tl.dot(b_dP, b_kt,
                                                                                     input_precision=PREC)
            tl.store(dq + off_k, b_dq.to(dq.dtype.element_ty), mask=m_tk)
            b_w = b_q.to(tl.float32) * b_dq
            # dk = e^{Gr-G} (dP^T qt) + e^{G_L - G} (v dh^T + dz)
            b_dk = tl.exp(b_Gr[None, :] - b_G) * tl.dot(tl.trans(b_dP), b_qt, input_precision=PREC) + b_dki
            tl.store(dk + off_k, b_dk.to(dk.dtype.element_ty), mask=m_tk)
            b_w -= b_k.to(tl.float32) * b_dk
            # dg = reverse cumsum inside the chunk of (q dq - k dk) + boundary term
            b_rc = tl.sum(b_w, axis=0)[None, :] - tl.cumsum(b_w, axis=0) + b_w
            tl.store(dg + off_k, (b_rc + b_bnd[None, :]).to(dg.dtype.element_ty), mask=m_tk)
    else:
        b_suf = tl.zeros([BK], dtype=tl.float32)  # sum of q dq - k dk over the rows after the current block
        for jj in range(0, BT // BC):
            r0 = (BT // BC - 1 - jj) * BC
            m_r = (i_c * BT + r0 + o_r) < T
            m_rk = m_r[:, None] & m_k[None, :]
            m_rv = m_r[:, None] & m_v[None, :]
            off_rk = row0 * K + (r0 + o_r)[:, None] * (H * K) + o_k[None, :]
            off_rv = row0 * V + (r0 + o_r)[:, None] * (H * V) + o_v[None, :]
            b_qj = tl.load(q + off_rk, mask=m_rk, other=0.).to(tl.float32)
            b_kj = tl.load(k + off_rk, mask=m_rk, other=0.).to(tl.float32)
            b_vj = tl.load(v + off_rv, mask=m_rv, other=0.)
            b_gj = tl.load(g + off_rk, mask=m_rk, other=0.).to(tl.float32)
            b_gb = tl.sum(tl.where((o_t == r0 - 1)[:, None], b_G, 0.), axis=0)  # cumulative decay before the block
            b_Gj = b_gb[None, :] + tl.cumsum(b_gj, axis=0)
            b_ge = b_gb + tl.sum(b_gj, axis=0)  # ... and at its end
            b_rj = 1.0 / (tl.load(den + row0 + (r0 + o_r) * H, mask=m_r, other=1.) + eps)
            b_dnj = tl.load(do + off_rv, mask=m_rv, other=0.).to(tl.float32) * b_rj[:, None]
            b_ddj = tl.load(dden + row0 + (r0 + o_r) * H, mask=m_r, other=0.)

            if DO_DQK:
                # dq of the block's rows (scaled at the end): through the chunk-start state, then earlier blocks
                b_dq = (tl.dot(b_dnj.to(DT), tl.trans(b_hb), input_precision=PREC)
                        + b_ddj[:, None] * b_z[None, :]) * tl.exp(b_Gj)
                if r0 > 0:
                    b_dP = tl.dot(b_dnj.to(DT), tl.trans(b_v), input_precision=PREC) + b_ddj[:, None]
                    b_dP = tl.where((o_t < r0)[None, :], b_dP, 0.).to(DT)
                    b_ks = tl.where((o_t < r0)[:, None],
                                    b_k.to(tl.float32) * tl.exp(tl.minimum(b_gb[None, :] - b_G, 0.)), 0.).to(DT)
                    b_dq += tl.exp(b_Gj - b_gb[None, :]) * tl.dot(b_dP, b_ks, input_precision=PREC)
            # dk, dv of the block's rows as columns: through the chunk-end state, then later blocks
            b_el = tl.exp(tl.minimum(b_gl[None, :] - b_Gj, 0.))
            if DO_DV:
                b_dv = tl.dot((b_kj * b_el).to(DT), b_dhb, input_precision=PREC)
            if DO_DQK:
                b_dk = b_el * (tl.dot(b_vj, tl.trans(b_dhb), input_precision=PREC) + b_dz[None, :])
            if r0 + BC < BT:
                m_after = o_t >= r0 + BC
                b_qs = tl.where(m_after[:, None],
                                b_q.to(tl.float32) * tl.exp(tl.minimum(b_G - b_ge[None, :], 0.)), 0.).to(DT)
                b_ee = tl.exp(tl.minimum(b_ge[None, :] - b_Gj, 0.))
                if DO_DV:
                    b_At = tl.dot((b_kj * b_ee).to(DT), tl.trans(b_qs), input_precision=PREC)  # [s, t] = A_ts
                    b_dv += tl.dot(b_At.to(DT), b_dnum, input_precision=PREC) * scale
                if DO_DQK:
                    b_dPt = tl.dot(b_vj, tl.trans(b_dnum), input_precision=PREC) + b_dd[None, :]
                    b_dPt = tl.where(m_after[None, :], b_dPt, 0.).to(DT)
                    b_dk += b_ee * tl.dot(b_dPt, b_qs, input_precision=PREC) * scale
            # the block with itself: factored around its middle row where that stays within e^RANGE, else pair
            # by pair
            b_Gm = tl.sum(tl.where((o_r == BC // 2 - 1)[:, None], b_Gj, 0.), axis=0)
            if tl.max(tl.max(tl.abs(b_Gj - b_Gm[None, :]), axis=1), axis=0) <= RANGE:
                m_c = o_r[:, None] >= o_r[None, :]
                b_qf = (b_qj * tl.exp(b_Gj - b_Gm[None, :])).to(DT)
                b_kf = (b_kj * tl.exp(b_Gm[None, :] - b_Gj)).to(DT)
                if DO_DV:
                    b_A = tl.where(m_c, tl.dot(b_qf, tl.trans(b_kf), input_precision=PREC), 0.).to(DT)
                    b_dv += tl.dot(tl.trans(b_A), b_dnj.to(DT), input_precision=PREC) * scale
                if DO_DQK:
                    b_dPd = tl.dot(b_dnj.to(DT), tl.trans(b_vj), input_precision=PREC) + b_ddj[:, None]
                    b_dPd = tl.where(m_c, b_dPd, 0.).to(DT)
                    b_dq += tl.exp(b_Gj - b_Gm[None, :]) * tl.dot(b_dPd, b_kf, input_precision=PREC)
                    b_dk += tl.exp(b_Gm[None, :] - b_Gj) * tl.dot(tl.trans(b_dPd), b_qf,
                                                                  input_precision=PREC) * scale
            else:
                if DO_DQK:
                    for s in range(0, BC):  # column s of the block: its rows t >= s
                        p_row = row0 + (r0 + s) * H
                        b_ks1 = _token_row(k, p_row * K, o_k, m_k, i_c * BT + r0 + s, T)
                        b_vs1 = _token_row(v, p_row * V, o_v, m_v, i_c * BT + r0 + s, T)
                        b_Gs = tl.sum(tl.where((o_r == s)[:, None], b_Gj, 0.), axis=0)
                        b_p = tl.where(o_r >= s, tl.sum(b_dnj * b_vs1[None, :], axis=1) + b_ddj, 0.)
                        b_dq += b_p[:, None] * b_ks1[None, :] * tl.exp(tl.minimum(b_Gj - b_Gs[None, :], 0.))
                b_vjf = b_vj.to(tl.float32)
                for t in range(0, BC):  # row t of the block: its columns s <= t
                    p_row = row0 + (r0 + t) * H
                    b_qt1 = _token_row(q, p_row * K, o_k, m_k, i_c * BT + r0 + t, T)
                    b_dn1 = _token_row(do, p_row * V, o_v, m_v, i_c * BT + r0 + t, T) \
                        * tl.sum(tl.where(o_r == t, b_rj, 0.), axis=0)
                    b_Gt = tl.sum(tl.where((o_r == t)[:, None], b_Gj, 0.), axis=0)
                    b_e = tl.exp(tl.minimum(b_Gt[None, :] - b_Gj, 0.))
                    if DO_DV:
                        b_a = tl.where(o_r <= t, tl.sum(b_kj * b_qt1[None, :] * b_e, axis=1), 0.) * scale
                        b_dv += b_a[:, None] * b_dn1[None, :]
                    if DO_DQK:
                        b_dd1 = tl.sum(tl.where(o_r == t, b_ddj, 0.), axis=0)
                        b_p = tl.where(o_r <= t, tl.sum(b_vjf * b_dn1[None, :], axis=1) + b_dd1, 0.) * scale
                        b_dk += b_p[:, None] * b_qt1[None, :] * b_e
            if DO_DV:
                tl.store(dv + off_rv, b_dv.to(dv.dtype.element_ty), mask=m_rv)
            if DO_DQK:
                b_dq = b_dq * scale
                tl.store(dq + off_rk, b_dq.to(dq.dtype.element_ty), mask=m_rk)
                tl.store(dk + off_rk, b_dk.to(dk.dtype.element_ty), mask=m_rk)
                # dg_u = sum_{t >= u in the chunk} (q dq - k dk)_t + boundary term
                b_w = b_qj * b_dq - b_kj * b_dk
                b_rc = b_suf[None, :] + tl.sum(b_w, axis=0)[None, :] - tl.cumsum(b_w, axis=0) + b_w
                tl.store(dg + off_rk, (b_rc + b_bnd[None, :]).to(dg.dtype.element_ty), mask=m_rk)
                b_suf += tl.sum(b_w, axis=0)
