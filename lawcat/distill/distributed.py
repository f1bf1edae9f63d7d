"""Data parallelism under torchrun, without DDP's one-forward-one-backward assumption.

Stage 1 back-propagates layer by layer (memory of one layer, not thirty), which DDP's hooks do not expect, so
ranks all-reduce the gradients of the trainable parameters themselves after each step. Every rank computes
loss sums divided by the *global* token count, so the summed gradients equal the single-process gradient of
the same global batch (up to float summation order).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str | None = None) -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local, dev)


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.world > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def sync_gradients(params, ctx: DistContext) -> None:
    """Sum gradients across ranks in one flat buffer (one collective per step)."""
    if ctx.world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(g).clone()
        offset += n


def shard(batch: dict, ctx: DistContext) -> dict:
    """This rank's rows of a global batch (rows r, r + world, ...)."""
    if ctx.world == 1:
        return batch
    return {k: v[ctx.rank::ctx.world] for k, v in batch.items()}


def barrier(ctx: DistContext) -> None:
    if ctx.world > 1:
        dist.barrier()


def apply_fsdp(student) -> None:
    """Shard a student for teachers too large for one device (FSDP2): one unit per decoder layer, one for the
    embeddings and the lm_head together (stage 1 calls the embeddings directly; the two are often tied), and
    the root (the final norm). FSDP averages gradients over ranks (a custom sum needs PREMUL_SUM, which gloo
    lacks), so the trainer divides its loss by the global token count over the world size: the average then
    equals the single-process gradient."""
    from torch.distributed.fsdp import fully_shard

    for layer in student.model.layers:
        fully_shard(layer)
    fully_shard([student.model.embed_tokens, student.lm_head])  # one group: tied embeddings share a tensor
    fully_shard(student)
    # FSDP initialises its unit hierarchy lazily on the first *root* forward; stage 1 calls the units directly,
    # so run one tiny root forward first (a collective: every rank does it).
    device = next(student.parameters()).device
    with torch.no_grad():
        student(input_ids=torch.zeros(1, 2, dtype=torch.long, device=device), use_cache=False)


def is_sharded(t) -> bool:
    return type(t).__name__ == "DTensor"


def full_state_dict(model) -> dict:
    """Every tensor of the model as a plain tensor (collective under FSDP: call it on all ranks)."""
    return {n: (t.full_tensor() if is_sharded(t) else t).detach() for n, t in model.state_dict().items()}
