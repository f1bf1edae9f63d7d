"""Triton kernels for normalized gated linear attention (LAWCAT Eq. 8).

Imported only on first use (see ``ops.py``): the two modules it gathers import triton at the top.

Per (batch, head) the recurrence is, with an extended value v^_t = [v_t, 1]:

    S^_t = diag(exp(g_t)) S^_{t-1} + k_t^T v^_t          S^ = [S, z]   (K x (V+1))
    o^_t = scale * q_t S^_t = [num_t, den_t]              o_t = num_t / (den_t + eps)

The sequence is cut in chunks of BT rows. Inside a chunk, G is the inclusive cumulative sum of g
(fp32, computed in registers) and G_L its last row. The chunks are grouped in segments of NS chunks:

* ``_fwd_local_kernel``   (parallel over segments): for each chunk, the state at the chunk start
  relative to the segment start (zero state at the segment start), and the decay since the segment
  start; at the end, the segment's own end state.
* ``_seg_scan_kernel``    (sequential over the few segments): the true state at each segment start
  (from the initial state), and the final state.  Run in reverse for the backward pass.
* ``_fwd_out_kernel``     (parallel over chunks): state at the chunk start = local + decay * segment
  state, then o = (q e^G) S + A v, den = (q e^G) z + rowsum(A), divided in the epilogue.

Backward: ``_bwd_local_kernel`` + reverse ``_seg_scan_kernel`` give the gradient w.r.t. the state at
each chunk end; ``_bwd_grad_kernel`` (parallel over chunks) gives dq, dk, dv and dg.  dg uses only
chunk-local quantities: dg_u = sum_{t>=u in chunk} (q dq - k dk)_t + rowsum(S^_end * dS^_end).

Decays inside a chunk: every gate g <= 0 is exact, however strong (trained gates reach g = -19 per step),
with no host sync. Each chunk takes the cheapest exact form its decays allow, checked on the device:

* whole chunk (the common case): exp(G_t - G_s) = (e^{G_t - G_r}) (e^{G_r - G_s}) around the middle row r,
  one BT x BT product, used when no |G_t - G_r| in the chunk exceeds RANGE (80; exp overflows at ~88);
* else block by block (BC = 16 rows): a row t and a column s of an earlier block meet through a block
  boundary b between them, exp(G_t - G_b) * exp(G_b - G_s), both <= 1, one tensor-core product per block
  pair; a block with itself is factored around its own middle row when that stays within RANGE, and
  otherwise done pair by pair with exp(min(G_t - G_s, 0)) on the CUDA cores.
Inter-chunk factors exp(G_t), exp(G_L - G_s) are <= 1.
"""

from ._chunk_kernels import _bwd_grad_kernel, _fwd_out_kernel
from ._state_kernels import _bwd_local_kernel, _fwd_local_kernel, _seg_scan_kernel

__all__ = ["_bwd_grad_kernel", "_bwd_local_kernel", "_fwd_local_kernel", "_fwd_out_kernel", "_seg_scan_kernel"]
