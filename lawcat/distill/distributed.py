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
