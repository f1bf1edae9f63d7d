"""The training loop shared by both stages: schedule, validation, logging, atomic checkpoints, exact resume.

A checkpoint (`<run>/state/<stage>/`) holds the trainable tensors, the optimizer and scheduler states, the
data position and every RNG, written to a temporary folder and swapped in, so a run killed with SIGKILL at any
moment resumes from the last checkpoint and ends with the same weights as an uninterrupted run (bit-exact on
CPU). A NaN/inf loss stops the run before the optimizer step, leaving the last good checkpoint in place.

A step is one optimizer step over one global batch; with `grad_accum` each rank's share of it goes through the
loss in that many micro-batches whose gradients add up before the step (more for a batch of long rows, with
`micro_batch_tokens`). Every micro-batch's loss is divided by the whole batch's token count, so the sum is the
batch's own loss and gradient: accumulation changes memory and time, not the training (up to float summation
order), and the data position, the schedule and the checkpoints still count optimizer steps.

With `keep_best`, the weights of the best validation so far are kept beside the training weights (in memory and in
every checkpoint) and put back into the model when the stage ends, also when it ends at its time cap: a later
--resume continues from the checkpoint's latest weights, not the restored ones.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from ..errors import LawcatError
from .distributed import DistContext, all_reduce_sum, barrier, shard, sync_gradients
from .recipe import StageSpec


class TrainingDivergedError(LawcatError, RuntimeError):
    pass


class JsonlLog:
    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = path, enabled

    def write(self, **record) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def make_scheduler(optimizer, spec: StageSpec, total_steps: int):
    if spec.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=spec.plateau_factor,
                                                          patience=spec.plateau_patience, min_lr=spec.plateau_min_lr)

    def factor(step: int) -> float:
        if step < spec.warmup_steps:
            return (step + 1) / spec.warmup_steps
        if spec.schedule == "constant":
            return 1.0
        progress = (step - spec.warmup_steps) / max(1, total_steps - spec.warmup_steps)
        return spec.min_lr_ratio + (1 - spec.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Trainer:
    """Runs one stage. `loss_fn(batch, token_count, backward) -> loss tensor` does its own backward pass (stage 1
    back-propagates layer by layer); `count_fn(batch) -> int` counts the tokens its loss is averaged over."""

    def __init__(self, name: str, params: dict[str, torch.nn.Parameter], spec: StageSpec, batches, val_batches,
                 loss_fn, count_fn, run_dir: Path, ctx: DistContext, autocast=contextlib.nullcontext,
                 sharded_model=None):
        self.name, self.params, self.spec = name, params, spec
        self.sharded_model = sharded_model  # the FSDP-wrapped student, when parameters are sharded
        self.batches, self.val_batches = batches, val_batches
        self.loss_fn, self.count_fn, self.ctx, self.autocast = loss_fn, count_fn, ctx, autocast
        self.state_dir = Path(run_dir) / "state" / name
        self.log = JsonlLog(Path(run_dir) / "log.jsonl", ctx.is_main)
        per_epoch = len(batches)
        self.total = int(math.ceil(spec.epochs * per_epoch))
        if spec.max_steps is not None:
            self.total = min(self.total, spec.max_steps)
        self.eval_every = spec.eval_every or per_epoch
        # One fused kernel for all parameters on a GPU (~200 small tensors in stage 1: the foreach path launches
        # several kernels per group); sharded DTensors keep the default implementation.
        fused = ctx.device.type == "cuda" and sharded_model is None
        self.optimizer = torch.optim.AdamW(list(params.values()), lr=spec.lr, weight_decay=spec.weight_decay,
                                           fused=fused or None)
        self.scheduler = make_scheduler(self.optimizer, spec, self.total)
        self.step, self.tokens, self.elapsed, self.best_val, self.best_step = 0, 0, 0.0, None, None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.restored_best = False
        self.time_capped = False  # set when the last run() stopped at spec.max_seconds
        # A wall-clock moment (time.time()) at which the whole run pauses, checkpointed, to go on later with
        # --resume (lawcat distill --max-seconds): unlike max_seconds it ends the process, not the stage.
        self.deadline: float | None = None
        self.paused = False

    # ---- checkpoints ---------------------------------------------------------------------------------------
    def _trainer_state(self) -> dict:
        return {"scheduler": self.scheduler.state_dict(), "data": self.batches.state_dict(), "rng": rng_state(),
                "step": self.step, "total": self.total, "tokens": self.tokens, "elapsed": self.elapsed,
                "best_val": self.best_val, "best_step": self.best_step}

    def save(self) -> None:
        tmp = self.state_dir.with_name(self.name + ".tmp")
        if self.ctx.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        barrier(self.ctx)
        if self.sharded_model is not None:
            # Sharded: every rank writes its shards (torch.distributed.checkpoint) and its own RNG/data state.
            import torch.distributed.checkpoint as dcp

            dcp.save({"params": dict(self.params), "optim": self._optimizer_tensors(), **self._best_entry()},
                     checkpoint_id=str(tmp / "sharded"))
            groups = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
            torch.save({**self._trainer_state(), "param_groups": groups}, tmp / f"rank{self.ctx.rank}.pt")
        elif self.ctx.is_main:
            save_file({n: p.detach().cpu().contiguous() for n, p in self.params.items()},
                      str(tmp / "params.safetensors"))
            if self.best_weights is not None:
                save_file({n: t.cpu().contiguous() for n, t in self.best_weights.items()},
                          str(tmp / "best.safetensors"))
            torch.save({**self._trainer_state(), "optimizer": self.optimizer.state_dict()}, tmp / "trainer.pt")
        barrier(self.ctx)
        if self.ctx.is_main:
            old = self.state_dir.with_name(self.name + ".old")
            if self.state_dir.exists():
                shutil.rmtree(old, ignore_errors=True)
                self.state_dir.rename(old)
            tmp.rename(self.state_dir)     # the swap: either the old or the new folder is complete at any moment
            shutil.rmtree(old, ignore_errors=True)
        barrier(self.ctx)

    def _best_entry(self, create: bool = False) -> dict:
        """The best-validation weights for a sharded checkpoint (placeholders to load into when `create`)."""
        if create:
            self.best_weights = {n: torch.zeros_like(p.detach()) for n, p in self.params.items()}
        return {"best": self.best_weights} if self.best_weights is not None else {}

    def _optimizer_tensors(self, create: bool = False) -> dict:
        """AdamW's per-parameter state by parameter name (sharded tensors stay sharded for dcp)."""
        out = {}
        for name, p in self.params.items():
            st = self.optimizer.state[p]
            if create and not st:  # AdamW's own layout, to be filled in place by the loader
                st.update(step=torch.zeros(()), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            out.update({f"{name}/{k}": v for k, v in st.items()})
        return out

    def has_checkpoint(self) -> bool:
        return self.state_dir.is_dir() or self.state_dir.with_name(self.name + ".old").is_dir()

    def load(self) -> None:
        folder = self.state_dir if self.state_dir.is_dir() else self.state_dir.with_name(self.name + ".old")
        if self.sharded_model is not None:
            import torch.distributed.checkpoint as dcp

            if not (folder / f"rank{self.ctx.rank}.pt").is_file():
                raise LawcatError(f"{folder} was written by a run with another number of processes; "
                                  "resume with the same torchrun --nproc_per_node")
            state = torch.load(folder / f"rank{self.ctx.rank}.pt", weights_only=False, map_location="cpu")
            best = self._best_entry(create=True) if state.get("best_step") is not None else {}
            dcp.load({"params": dict(self.params), "optim": self._optimizer_tensors(create=True), **best},
                     checkpoint_id=str(folder / "sharded"))   # loads in place into the sharded tensors
            for group, saved in zip(self.optimizer.param_groups, state["param_groups"]):
                group.update(saved)
        else:
            tensors = load_file(str(folder / "params.safetensors"))
            if set(tensors) != set(self.params):
                raise LawcatError(f"checkpoint {folder} holds other parameters than this run trains; "
                                  "resume with the same recipe and preset")
            with torch.no_grad():
                for n, p in self.params.items():
                    p.copy_(tensors[n].to(p.device, p.dtype))
            if (folder / "best.safetensors").is_file():
                best = load_file(str(folder / "best.safetensors"))
                self.best_weights = {n: best[n].to(p.device, p.dtype) for n, p in self.params.items()}
            state = torch.load(folder / "trainer.pt", weights_only=False, map_location="cpu")  # written by us
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.batches.load_state_dict(state["data"])
        set_rng_state(state["rng"])
        self.step, self.tokens, self.elapsed = state["step"], state["tokens"], state["elapsed"]
        self.best_val, self.best_step = state["best_val"], state.get("best_step")

    @property
    def finished(self) -> bool:
        return self.step >= self.total

    # ---- the loop --------------------------------------------------------------------------------------------
    def _micro_batches(self, local: dict, backward: bool) -> list[dict]:
        """This rank's rows in `spec.grad_accum` consecutive slices, on the device, or in more where a slice would
        hold over `spec.micro_batch_tokens` tokens (a batch of long rows). Validation's last batch may be short (it
        keeps every row): it goes in as many slices as it has rows, at most grad_accum."""
        rows, length = local["input_ids"].shape
        n = self.spec.grad_accum
        if backward and rows < n:
            raise LawcatError(f"{self.name}: {rows} row(s) per process cannot be split into grad_accum={n} "
                              f"micro-batches; raise batch_size (now {self.spec.batch_size} over {self.ctx.world} "
                              "process(es)) or lower grad_accum")
        limit = self.spec.micro_batch_tokens
        if limit:
            # A row is never cut: one row over the limit goes alone.
            n = max(n, math.ceil(rows / max(1, limit // length)))
        n = max(1, min(n, rows))
        parts = zip(*(v.tensor_split(n) for v in local.values())) if n > 1 else [local.values()]
        return [{k: v.to(self.ctx.device, non_blocking=True) for k, v in zip(local, part)} for part in parts]

    def _loss(self, local: dict, count: float, backward: bool) -> torch.Tensor:
        """The loss of this rank's rows (their gradients accumulated when `backward`), micro-batch by micro-batch,
        each normalised by the whole batch's `count`."""
        total = torch.zeros((), device=self.ctx.device)
        for part in self._micro_batches(local, backward):
            # (a replayed graph hands back its own loss tensor, overwritten by the next replay: add, never alias)
            total = total + self.loss_fn(part, count, backward).detach()
        return total

    def _lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def validate(self) -> float | None:
        if not self.val_batches:
            return None
        total = torch.zeros((), device=self.ctx.device)
        for batch in self.val_batches:
            local = shard(batch, self.ctx)
            count = all_reduce_sum(torch.tensor(float(self.count_fn(local)), device=self.ctx.device), self.ctx)
            with torch.no_grad():
                total += self._loss(local, count.item(), False)
        return (all_reduce_sum(total, self.ctx) / len(self.val_batches)).item()

    def _time_check(self, t_start: float) -> str | None:
        """"cap" past the stage's max_seconds, "pause" past the run's deadline, else None: one decision for all
        ranks (any rank past it), or a rank would wait alone."""
        if self.spec.max_seconds is None and self.deadline is None:
            return None
        flags = [float(self.spec.max_seconds is not None and time.perf_counter() - t_start > self.spec.max_seconds),
                 float(self.deadline is not None and time.time() > self.deadline)]
        if self.ctx.world > 1:
            flags = all_reduce_sum(torch.tensor(flags, device=self.ctx.device), self.ctx).tolist()
        return "pause" if flags[1] > 0 else "cap" if flags[0] > 0 else None

    def run(self) -> dict:
        params = list(self.params.values())
        it = iter(self.batches)
        bar = tqdm(total=self.total, initial=self.step, desc=self.name, disable=not self.ctx.is_main,
                   dynamic_ncols=True)
        t_start, tok_start = time.perf_counter(), self.tokens
        if self.ctx.device.type == "cuda":  # the summary reports this stage's own peak, per process
            torch.cuda.reset_peak_memory_stats(self.ctx.device)
        while self.step < self.total:
            stop = self._time_check(t_start)
            if stop == "pause":
                self.paused = True
                bar.write(f"{self.name}: paused at step {self.step}/{self.total} (the run's --max-seconds); "
                          "continue it with --resume")
                self.save()
                break
            if stop == "cap":
                self.time_capped = True
                bar.write(f"{self.name}: stopped at step {self.step}/{self.total} by max_seconds="
                          f"{self.spec.max_seconds:g} (schedule unfinished)")
                self.save()
                break
            t0 = time.perf_counter()
            cpu_batch = shard(next(it), self.ctx)
            # Counted on the host batch: a count read back from the GPU would stall the queue every step.
            counts = [float(self.count_fn(cpu_batch)), float(cpu_batch["attention_mask"].sum())]
            if self.ctx.world > 1:
                counts = all_reduce_sum(torch.tensor(counts, device=self.ctx.device), self.ctx).tolist()
            count, real = counts
            self.optimizer.zero_grad(set_to_none=True)
            # Sharded: FSDP averages gradients over ranks, so each rank's share is scaled up by the world size.
            scale = self.ctx.world if self.sharded_model is not None else 1
            loss = all_reduce_sum(self._loss(cpu_batch, count / scale, True), self.ctx).item() / scale
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"{self.name}: the loss became {loss} at step {self.step + 1}; the last good checkpoint is in "
                    f"{self.state_dir}. Lower the learning rate ({self.spec.lr}) and resume with --resume.")
            if self.sharded_model is None:  # FSDP reduce-scatters (sums) gradients itself
                sync_gradients(params, self.ctx)
            if self.spec.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, self.spec.grad_clip)
            self.optimizer.step()
            if not isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step()
            self.step += 1
            self.tokens += int(real)
            self.elapsed += time.perf_counter() - t0
            rate = (self.tokens - tok_start) / max(1e-9, time.perf_counter() - t_start)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}", tok_s=f"{rate:,.0f}", lr=f"{self._lr():.2e}")
            self.log.write(stage=self.name, step=self.step, loss=loss, lr=self._lr(), tokens=self.tokens,
                           tokens_per_s=rate, elapsed_s=self.elapsed)
            if os.environ.get("LAWCAT_FAULT_AT_STEP") == f"{self.name}:{self.step}":
                # Fault injection for the resume tests: die like `kill -9`, between two checkpoints.
                os.kill(os.getpid(), signal.SIGKILL)
            if self.step % self.eval_every == 0 or self.step == self.total:
                val = self.validate()
                if val is not None:
                    if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        self.scheduler.step(val)
                    if self.best_val is None or val < self.best_val:
                        self.best_val, self.best_step = val, self.step
                        if self.spec.keep_best:
                            self._snapshot_best()
                    self.log.write(stage=self.name, step=self.step, val_loss=val, lr=self._lr())
                    bar.write(f"{self.name} step {self.step}: validation loss {val:.4g}")
            if self.step % self.spec.save_every == 0 or self.step == self.total:
                self.save()
        bar.close()
        if self.spec.keep_best and (self.finished or self.time_capped):
            self.restore_best()  # after the last save: a resume continues from the latest weights
        return self.summary()

    def _snapshot_best(self) -> None:
        with torch.no_grad():
            if self.best_weights is None:
                self.best_weights = {n: p.detach().clone() for n, p in self.params.items()}
            else:
                for n, p in self.params.items():
                    self.best_weights[n].copy_(p.detach())

    def restore_best(self) -> None:
        """Put the best-validation weights back (in place: CUDA graphs and optimizers keep their tensors)."""
        if self.best_weights is None:
            return
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(self.best_weights[n])
        self.restored_best = True

    def summary(self) -> dict:
        out = {"steps": self.step, "planned_steps": self.total, "tokens": self.tokens, "elapsed_s": self.elapsed,
               "tokens_per_s": self.tokens / max(1e-9, self.elapsed), "best_val": self.best_val,
               "best_step": self.best_step, "restored_best": self.restored_best, "time_capped": self.time_capped,
               "final_lr": self._lr(), "paused": self.paused}
        if self.ctx.device.type == "cuda":
            out["peak_memory_gib"] = torch.cuda.max_memory_allocated(self.ctx.device) / 2**30
        return out
