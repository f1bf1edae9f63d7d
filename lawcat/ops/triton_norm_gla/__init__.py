"""Triton normalized gated linear attention (LAWCAT Eq. 8), forward and backward.

``normalized_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, eps=1e-6)``
computes o = num / (den + eps) with the numerator state S and the normalizer state z carried
together (state [B, H, K, V+1] float32, z last).  Importing this package does not import triton.
"""

from .ops import normalized_gla

__all__ = ["normalized_gla"]
