"""Fused LAWCAT front end for inference: causal conv across tokens and the Hedgehog feature map in one Triton pass.

``conv_feature_map(x, conv_weight, map_weight, ...)`` equals ``hedgehog(causal_conv1d(x * mask), map)`` (with the
key's GQA repeat and the mask after the map) without the ~15 memory passes the PyTorch ops make between them.
Forward only: training keeps the PyTorch ops, whose autograd it needs. Importing this package does not import triton.
"""

from .ops import conv_feature_map

__all__ = ["conv_feature_map"]
