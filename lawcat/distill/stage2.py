"""Stage 2's loss: next-token cross-entropy of the LoRA-adapted student, eager or replayed from CUDA graphs.

`stage2_loss` computes logits only at the label positions (a few dozen of ~1,200 with the answer-span loss of
the task recipes), which spares most of the vocabulary projection, but finding those positions reads back from
the GPU. The graphed step (`stage2.cuda_graph=true`) cannot read back, so it computes the logits at every
position instead (for the default teacher ~1.6 TFLOP more per batch of 8 x 1.2K, a few ms on an H200, against
the ~1,000 launches a replay saves) and runs the right-padded batch unmasked: exact for every real token, since
nothing in the model looks ahead and the loss ignores the pads.

`stage2.activation_checkpointing` runs each decoder layer through torch.utils.checkpoint (checkpointed_layers):
stage 2 back-propagates through the whole stack, so without it every layer's activations are alive at once.
"""
from __future__ import annotations

import contextlib
from functools import partial

import torch
from torch.utils.checkpoint import checkpoint

from .graph_step import GraphedStep


def stage2_count(batch, row_mean: bool = False) -> int:
    """What stage 2's loss is averaged over in `batch`: its label tokens, or (`row_mean`) its rows with a label."""
    labelled = batch["labels"][:, 1:] != -100
    return int(labelled.any(1).sum() if row_mean else labelled.sum())


def stage2_loss(student, autocast, batch, token_count, backward, row_mean=False):
    """Next-token cross-entropy summed over the label tokens, divided by the global label count (`row_mean`: each
    row's mean over its label tokens, summed and divided by the global count of rows with labels).

    Logits are computed only at positions where some row has a label: with the answer-span loss of the task
    recipes that is a few dozen of ~1,200 positions, which spares most of the vocabulary projection and its
    float32 copy (the largest tensors of the step)."""
    labels = batch["labels"][:, 1:]
    positions = (labels != -100).any(0).nonzero().squeeze(1)
    with autocast():
        logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False,
                         logits_to_keep=positions).logits
    return _label_loss(logits, labels[:, positions], token_count, backward, row_mean)


def stage2_loss_right_padded(student, autocast, batch, token_count, backward, row_mean=False):
    """stage2_loss without any read-back, for right-padded batches: logits everywhere, no attention mask."""
    with autocast():
        logits = student(input_ids=batch["input_ids"], use_cache=False).logits[:, :-1]
    return _label_loss(logits, batch["labels"][:, 1:], token_count, backward, row_mean)


def _label_loss(logits, labels, token_count, backward, row_mean=False):
    """Cross-entropy summed over the labelled positions (-100: none), divided by `token_count`; with `row_mean`
    each row's sum is first divided by its own label count (a row without labels, a graph's padding, adds 0)."""
    ce = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                           ignore_index=-100, reduction="none").view(labels.shape)
    if row_mean:
        ce = ce / (labels != -100).sum(1, keepdim=True).clamp(min=1)
    loss = ce.sum() / token_count
    if backward:
        loss.backward()
    return loss


@contextlib.contextmanager
def checkpointed_layers(student, on: bool = True):
    """Inside the block, each decoder layer keeps only its inputs in the forward pass and recomputes the rest in
    the backward pass (about one more forward of compute). Non-reentrant: the layers' inputs need no grad, and
    under FSDP the layer's own hooks stay outside the checkpoint, so its parameters are gathered before the
    recompute. The layers' forward is wrapped per instance, so parameter names and state dicts are untouched."""
    if not on:
        yield
        return
    layers = list(student.model.layers)
    for layer in layers:
        layer.forward = partial(checkpoint, layer.forward, use_reentrant=False)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward  # back to the class's forward


class GraphedStage2(GraphedStep):
    """`(batch, token_count, backward) -> loss` for stage 2 on one CUDA device; see GraphedStep for the keywords."""

    def __init__(self, student, params, autocast=contextlib.nullcontext, pad_id: int = 0, row_mean: bool = False,
                 **kwargs):
        def graphed(batch, token_count, autocast, backward):
            return stage2_loss_right_padded(student, autocast, batch, token_count, backward, row_mean)

        def eager(batch, token_count, autocast, backward):
            return stage2_loss(student, autocast, batch, token_count, backward, row_mean)

        super().__init__(params, graphed, eager, {"input_ids": pad_id, "labels": -100}, autocast,
                         name="stage2", **kwargs)
