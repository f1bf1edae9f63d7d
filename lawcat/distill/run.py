"""One distillation run: teacher -> linearize -> stage 1 (attention transfer) -> stage 2 (LoRA) -> saved student.

    run_dir/
      recipe.yaml       the resolved recipe (overrides applied)
      log.jsonl         one line per step and per validation
      summary.json      tokens/s and wall time per stage, final losses
      config.json, model.safetensors, tokenizer files   the student (see lawcat.models.checkpoint)
      state/stage1, state/stage2                        resumable training state
"""
from __future__ import annotations

import contextlib
import json
import random
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..data import BatchIterator, pad_token_id
from ..errors import LawcatError
from ..models import LawcatConfig, linearize, load_teacher
from ..models.checkpoint import atomic_write_text
from ..models.lora import add_lora, lora_parameters, merge_lora, merge_lora_state
from .data import build_examples, make_batches, stage1_examples, stage2_examples, stage2_train_examples
from .distributed import DistContext, apply_fsdp, barrier, full_state_dict, setup
from .recipe import Recipe
from .stage1 import attention_transfer_step
from .stage1_graph import GraphedStage1
from .stage2 import GraphedStage2, checkpointed_layers, stage2_count, stage2_loss
from .trainer import Trainer
from .warm_start import load_initial_weights


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def computes_in_bf16(recipe: Recipe, device: torch.device) -> bool:
    return recipe.precision == "bf16" or (recipe.precision == "auto" and device.type == "cuda")


def autocast_for(recipe: Recipe, device: torch.device):
    if not computes_in_bf16(recipe, device):
        return contextlib.nullcontext
    return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)


def teacher_dtype_for(recipe: Recipe, device: torch.device) -> torch.dtype:
    """The dtype the frozen teacher is loaded in (recipe.teacher_dtype).

    Under bf16 autocast every matmul already reads bf16; a bf16 copy of the weights adds the residual stream and
    the norms in bf16 too, and halves the teacher's memory on every process. Measured on the default teacher (CPU,
    bf16 autocast, 2 x 512 tokens of books:train, relative norms against fp32 without autocast): stage 1's targets
    at layers 0 / 15 / 29 move by 0.26 / 1.3 / 1.2% with an fp32 teacher and 0.29 / 1.8 / 3.0% with a bf16 one,
    the gradient of a fresh student by 1.2% and 1.5%; the shipped passkey student, trained, is still 3.1 / 24 /
    14% off its targets on passkey prompts (median 24% over the layers), 4x or more the bf16 teacher's rounding
    at each of those layers. So float32 is the default, the setting every headline run was measured with, and
    bfloat16 (or auto) is for teachers whose fp32 copy would not fit on each process. fp32 compute needs fp32
    weights: LAWCAT's fp32 layers would meet bf16 inputs."""
    bf16 = computes_in_bf16(recipe, device)
    if recipe.teacher_dtype == "auto":
        return torch.bfloat16 if bf16 and device.type == "cuda" else torch.float32
    if recipe.teacher_dtype == "bfloat16" and not bf16:
        raise LawcatError(f"teacher_dtype=bfloat16 needs bf16 compute, but this run computes in float32 "
                          f"(precision={recipe.precision} on {device.type}); set precision=bf16")
    return getattr(torch, recipe.teacher_dtype)


def _check_graph_run(stage: str, ctx: DistContext, sharded) -> None:
    if sharded is not None:  # (layer_group and compile are checked with the recipe)
        raise LawcatError(f"{stage}.cuda_graph captures a whole unsharded step; FSDP shards it layer by layer: "
                          f"use parallel=ddp or {stage}.cuda_graph=false")
    if ctx.device.type != "cuda":
        raise LawcatError(f"{stage}.cuda_graph needs a CUDA device; this run is on {ctx.device}")


def stage1_loss_fn(recipe: Recipe, student, autocast, pad_id: int, ctx: DistContext, sharded):
    """Stage 1's `(batch, token_count, backward) -> loss`: eager, or replayed from CUDA graphs (stage1.cuda_graph).

    The training and validation batches are right-padded (make_batches, BatchIterator's default), which lets the
    layers run unmasked (lawcat.models.transfer.embed_for_transfer)."""
    s1 = recipe.stage1
    if s1.cuda_graph:
        _check_graph_run("stage1", ctx, sharded)
        return GraphedStage1(student, student.lawcat_parameters(), s1.mse_weight, autocast, pad_id=pad_id)
    # FSDP's per-layer units hold their full parameters only inside their own forward: layer by layer there.
    group = 1 if sharded is not None else s1.layer_group
    return lambda b, n, bw: attention_transfer_step(student, b, s1.mse_weight, n, autocast, bw, layer_group=group,
                                                    compile=s1.compile, right_padded=True)


def stage2_loss_fn(recipe: Recipe, student, params, autocast, pad_id: int, ctx: DistContext, sharded):
    """Stage 2's `(batch, token_count, backward) -> loss`: eager, or replayed from CUDA graphs (stage2.cuda_graph;
    right-padded batches, lawcat.distill.stage2)."""
    row_mean = recipe.stage2.loss_mean == "row"
    if recipe.stage2.cuda_graph:
        _check_graph_run("stage2", ctx, sharded)
        return GraphedStage2(student, params, autocast, pad_id=pad_id, row_mean=row_mean)
    return partial(stage2_loss, student, autocast, row_mean=row_mean)


def _keep_earlier_call(summary: dict, stage: str, run: Path, idle: bool) -> None:
    """A resumed stage that made no step in this call keeps what the call that ran it measured (graph replays,
    peak memory): this call's counters would report zeros."""
    earlier = run / "summary.json"
    if not idle or not earlier.is_file():
        return
    before = json.loads(earlier.read_text()).get(stage, {})
    for key in ("cuda_graph", "peak_memory_gib"):
        if key in before:
            summary[stage][key] = before[key]


def _paused(summary: dict, run: Path, ctx: DistContext, t_wall: float) -> dict:
    """The run stopped at its --max-seconds: its checkpoints hold everything, the student is not saved yet."""
    summary.update(paused=True, wall_s=time.perf_counter() - t_wall)
    if ctx.is_main:
        atomic_write_text(run / "summary.json", json.dumps(summary, indent=2))
    barrier(ctx)
    return summary


def _named(student, params) -> dict:
    ids = {id(p) for p in params}
    return {n: p for n, p in student.named_parameters() if id(p) in ids}


def distill(recipe: Recipe, teacher_src: str, out: str | Path, resume: bool = False, device: str | None = None,
            teacher=None, tokenizer=None, max_seconds: float | None = None) -> dict:
    """Run both stages of `recipe` on `teacher_src` into `out`. Returns the summary dict (also in summary.json).

    `max_seconds` pauses the run (checkpointed, no student saved, summary["paused"] true) at the first step past
    that many seconds from now; `resume=True` continues it. Unlike the recipe's per-stage max_seconds it leaves
    the recipe, and so the trained weights, unchanged: a long run can be spread over several time-limited calls."""
    ctx: DistContext = setup(device)
    deadline = None if max_seconds is None else time.time() + max_seconds
    run = Path(out)
    if run.exists() and any(run.iterdir()) and not resume:
        raise LawcatError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not (run / "state").is_dir():
        raise LawcatError(f"{run} has no training state to resume from; start it without --resume")
    if resume and (run / "recipe.yaml").is_file() and (run / "recipe.yaml").read_text() != recipe.to_yaml():
        raise LawcatError(f"the recipe differs from {run / 'recipe.yaml'}; resume with the same recipe and "
                          "overrides (a changed recipe would silently mix two trainings)")
    barrier(ctx)  # every rank has checked before rank 0 writes anything
    if ctx.is_main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run / "recipe.yaml", recipe.to_yaml())
    barrier(ctx)
    t_wall = time.perf_counter()
    seed_everything(recipe.seed)
    if teacher is None:  # straight onto the training device, in the recipe's teacher_dtype
        teacher, tokenizer = load_teacher(teacher_src, dtype=teacher_dtype_for(recipe, ctx.device),
                                          device=ctx.device)
    teacher.requires_grad_(False)
    cfg = LawcatConfig.from_preset(recipe.preset, **recipe.model)
    student = linearize(teacher, cfg)
    student.to(ctx.device)
    s2 = recipe.stage2
    run_stage2 = s2.trains
    if run_stage2:
        # LoRA goes in before any sharding (FSDP cannot adopt new parameters later). B starts at zero, so the
        # frozen adapters change nothing in stage 1; a fixed seed makes their init independent of resumes.
        torch.manual_seed(recipe.seed + 1)
        for p in add_lora(student, s2.lora_r, s2.lora_alpha, s2.lora_dropout, s2.lora_targets):
            p.data = p.data.float()  # peft gives adapters the base layer's dtype; trained weights stay fp32
    init_path = (load_initial_weights(student, recipe.init, recipe.stage1.trains, lora=recipe.init_lora)
                 if recipe.init else None)
    student.requires_grad_(False)
    sharded = None
    if recipe.parallel == "fsdp" and ctx.world > 1:
        apply_fsdp(student)
        sharded = student
    autocast = autocast_for(recipe, ctx.device)

    train = build_examples(recipe, tokenizer, "train")
    val = build_examples(recipe, tokenizer, "val")
    if not train:
        raise LawcatError("the recipe produced no training examples; raise data.n_train")
    pad = pad_token_id(tokenizer)
    summary = {"recipe": recipe.name, "teacher": teacher_src, "device": str(ctx.device), "world_size": ctx.world,
               "n_train": len(train), "n_val": len(val),
               "mean_train_tokens": float(np.mean([len(e) for e in train])),
               **({"init": str(init_path)} if init_path else {})}

    def val_batches(bs, rows=val):
        if not rows:
            return []
        return list(BatchIterator(rows, bs, pad, shuffle=False, bucket=False, epochs=1, padding_side="right"))

    # ---- stage 1 -------------------------------------------------------------------------------------------
    s1 = recipe.stage1
    for p in student.lawcat_parameters():
        p.requires_grad_(True)
    stage1_step = stage1_loss_fn(recipe, student, autocast, pad, ctx, sharded)
    trainer1 = Trainer(
        "stage1", _named(student, student.lawcat_parameters()), s1,
        make_batches(stage1_examples(recipe, tokenizer, train), tokenizer, s1.batch_size, recipe.seed,
                     recipe.data.bucket), val_batches(s1.batch_size),
        stage1_step, lambda b: int(b["attention_mask"].sum()), run, ctx, autocast, sharded_model=sharded)
    if resume and trainer1.has_checkpoint():
        trainer1.load()
    trainer1.deadline = deadline
    student.train()
    steps_before = trainer1.step
    summary["stage1"] = trainer1.run()  # returns at once when a resumed stage 1 had already finished
    if isinstance(stage1_step, GraphedStage1):
        summary["stage1"]["cuda_graph"] = stage1_step.stats()
        stage1_step.release()  # stage 2 needs the memory (and other trainings sharing the GPU)
    _keep_earlier_call(summary, "stage1", run, trainer1.step == steps_before and resume)
    if trainer1.paused:
        return _paused(summary, run, ctx, t_wall)

    # ---- stage 2 -------------------------------------------------------------------------------------------
    if run_stage2:
        student.requires_grad_(False)
        trainable = lora_parameters(student) + (student.lawcat_parameters() if s2.train_lawcat_params else [])
        for p in trainable:
            p.requires_grad_(True)
        stage2_step = stage2_loss_fn(recipe, student, trainable, autocast, pad, ctx, sharded)
        train2 = stage2_train_examples(recipe, tokenizer, train)
        summary["n_train_stage2"] = len(train2)
        trainer2 = Trainer(
            "stage2", _named(student, trainable), s2,
            make_batches(train2, tokenizer, s2.batch_size, recipe.seed + 1, recipe.data.bucket),
            val_batches(s2.batch_size, stage2_examples(val)), stage2_step,
            partial(stage2_count, row_mean=s2.loss_mean == "row"), run, ctx, autocast, sharded_model=sharded)
        if resume and trainer2.has_checkpoint():
            trainer2.load()
        trainer2.deadline = deadline
        student.train()
        steps_before = trainer2.step
        with checkpointed_layers(student, s2.activation_checkpointing):
            summary["stage2"] = trainer2.run()
        if isinstance(stage2_step, GraphedStage2):
            summary["stage2"]["cuda_graph"] = stage2_step.stats()
            stage2_step.release()
        _keep_earlier_call(summary, "stage2", run, trainer2.step == steps_before and resume)
        if trainer2.paused:
            return _paused(summary, run, ctx, t_wall)
    student.eval().requires_grad_(False)
    summary["wall_s"] = time.perf_counter() - t_wall
    state = None
    if sharded is not None:  # gather the shards (a collective: every rank takes part), merge in the dict
        state = full_state_dict(student)
        if run_stage2 and s2.merge_lora:
            state = merge_lora_state(state, s2.lora_alpha, s2.lora_r, student.config)
    elif run_stage2 and s2.merge_lora:
        merge_lora(student)
    if ctx.is_main:
        student.save_pretrained(run, tokenizer=tokenizer, state=state)
        atomic_write_text(run / "summary.json", json.dumps(summary, indent=2))
    barrier(ctx)
    return summary
