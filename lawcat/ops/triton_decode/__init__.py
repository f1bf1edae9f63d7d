"""One decode step of a LAWCAT layer in one Triton kernel: conv on q and k, the feature map, the gate's
log-sigmoid, the gated state update and the normalized readout, with the states updated in place.

Inference only. Importing this package does not import triton.
"""

from .ops import decode_step, usable

__all__ = ["decode_step", "usable"]
