"""Stage 1, attention transfer: every LAWCAT layer learns to reproduce its teacher layer's softmax attention.

Per layer, the teacher's softmax output and the LAWCAT output are computed from the same layer input (and the
same q, k, v projections, computed once); the teacher's output then flows on to the next layer, so no layer
ever sees a student's output and the teacher's graph is never kept (it runs under no_grad).

Because every layer's input comes from the teacher, the LAWCAT side of all layers can run *at once*: the
teacher pass collects each layer's input, q/k/v and target, and the layers are then evaluated as one wide
layer of G*H heads (lawcat.layers.attention.stacked_linear_attention), with one backward. The gradients are the
per-layer ones (the layers share no parameters); what changes is the launch count, which is what bounds a
small teacher's step on a GPU (~4,000 operator launches per step when run layer by layer). `layer_group`
trades memory for speed: 0 fuses all layers (memory: one copy of every layer's input, q/k/v and target, plus
the fused layer's activations), 1 runs layer by layer (the memory of one layer; the FSDP path, whose
per-layer units only hold their full parameters inside their own forward).
"""
from __future__ import annotations

import contextlib
import functools

import torch

from ..layers.attention import stacked_linear_attention
from ..models.transfer import embed_for_transfer, transfer_pairs

# The LAWCAT side of a fused step, with the shift form of the conv: it is the form torch.compile can fuse, and even
# uncompiled its forward + backward was slightly faster than cuDNN's grouped conv1d on an H200 (40.0 against 42.7 ms
# at 17,280 channels; results/stage1-throughput/).
_student_side = functools.partial(stacked_linear_attention, conv_impl="shift")


@functools.cache
def _compiled_student():
    """_student_side under torch.compile (inductor fuses the shift conv with the masks, the GQA repeat and the
    feature map; cuDNN's conv would be an opaque call). The GLA kernel itself stays an opaque call
    (lawcat.ops.fla_backend). dynamic=True: batches of new lengths reuse one graph."""
    return torch.compile(_student_side, dynamic=True)


def _group_pairs(student, batch: dict, autocast, grad: bool, group: int, compile: bool = False,
                 right_padded: bool = False):
    """Yield (LAWCAT outputs [B,T,G,H*D], teacher outputs [B,T,G,H*D]) for consecutive groups of layers.

    compile: run the LAWCAT side through torch.compile (_compiled_student)."""
    student_side = _compiled_student() if compile else _student_side
    h, rope, pad_mask = embed_for_transfer(student, batch, autocast, right_padded)
    layers = list(student.model.layers)
    for start in range(0, len(layers), group):
        members = layers[start:start + group]
        xs, qs, ks, vs, targets = [], [], [], [], []
        with torch.no_grad(), autocast():
            for layer in members:
                h, x, (q, k, v), target = layer.teacher_step(h, pad_mask, rope)
                xs.append(x), qs.append(q), ks.append(k), vs.append(v), targets.append(target)
            target = torch.stack(targets, dim=2)
        del targets
        with torch.set_grad_enabled(grad), autocast():
            pred = student_side([m.self_attn for m in members], xs, qs, ks, vs, pad_mask, rope)
        yield pred, target


def _squared_error(pred, target, mask) -> torch.Tensor:
    """Sum over real tokens (and layers, for grouped outputs) of the squared error, averaged over features."""
    m = mask.float().view(*mask.shape, *([1] * (pred.dim() - mask.dim())))
    return (pred.float() - target.float()).pow(2).mul(m).sum() / pred.shape[-1]


def attention_transfer_step(student, batch: dict, mse_weight: float, token_count,
                            autocast=contextlib.nullcontext, backward: bool = True,
                            layer_group: int = 0, compile: bool = False, right_padded: bool = False) -> torch.Tensor:
    """Forward (and backward) one batch through all layers. Returns the summed per-layer weighted MSE,
    normalised by `token_count` (the global number of real tokens, for exact data parallelism; a float, or a
    0-dim tensor where the step is replayed from a CUDA graph).

    layer_group: layers evaluated together (0 = all, 1 = one at a time; see the module docstring).
    compile: the fused LAWCAT side through torch.compile (fewer, fused kernels on a GPU; the first steps compile,
    and the layer-by-layer path, layer_group=1, ignores it).
    right_padded: every row is padded at its end only (see embed_for_transfer); the training batches are."""
    n_layers = len(student.model.layers)
    group = n_layers if layer_group <= 0 else min(layer_group, n_layers)
    pairs = (transfer_pairs(student, batch, autocast, backward, right_padded) if group == 1
             else _group_pairs(student, batch, autocast, backward, group, compile, right_padded))
    total = torch.zeros((), device=batch["input_ids"].device)
    for pred, target in pairs:
        loss = _squared_error(pred, target, batch["attention_mask"]) / token_count * mse_weight
        if backward:
            loss.backward()
        total = total + loss.detach()
    return total


@torch.no_grad()
def per_layer_mse(student, batch: dict, autocast=contextlib.nullcontext) -> list[float]:
    """Unweighted MSE of every layer on one batch: the diagnostic for which layers lag behind."""
    n = float(batch["attention_mask"].sum())
    return [(_squared_error(p, t, batch["attention_mask"]) / n).item()
            for p, t in transfer_pairs(student, batch, autocast, False)]
