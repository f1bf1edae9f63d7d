"""Stage 1's training step replayed from CUDA graphs (`stage1.cuda_graph=true`; lawcat.distill.graph_step).

The fused step of all layers is captured; the batches are right-padded, so the teacher's layers run unmasked
(lawcat.models.transfer.embed_for_transfer) and nothing in the step reads back from the GPU.
"""
from __future__ import annotations

import contextlib

from .graph_step import GraphedStep
from .stage1 import attention_transfer_step


class GraphedStage1(GraphedStep):
    """`(batch, token_count, backward) -> loss` for stage 1 on one CUDA device; see GraphedStep for the keywords."""

    def __init__(self, student, params, mse_weight: float, autocast=contextlib.nullcontext, pad_id: int = 0,
                 **kwargs):
        def step(batch, token_count, autocast, backward):
            return attention_transfer_step(student, batch, mse_weight, token_count, autocast, backward,
                                           layer_group=0, right_padded=True)

        super().__init__(params, step, step, {"input_ids": pad_id, "attention_mask": 0}, autocast,
                         name="stage1", **kwargs)
