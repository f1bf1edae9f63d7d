"""Starting a run from a trained student (recipe `init`) instead of a fresh linearization.

What it is for: more training of a student that exists (more stage-2 epochs after its validation loss was still
falling, a shipped student fine-tuned on one's own data) without paying for its stage 1 again: `init: <run dir or
shipped name>` with `stage1.epochs=0`. The student's LAWCAT weights (convs, feature maps, gates) are copied in,
and its LoRA adapters too when it kept them separate (stage2.merge_lora=false) and this run has stage 2 with the
same adapters (unless the recipe's `init_lora` is false: stage 2 then starts again from fresh adapters, from the
student its stage 1 left). Optimizer state and schedule start fresh: this is a new training from those weights,
not a resume (`--resume` continues an interrupted run).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import TeacherMismatchError
from ..models.checkpoint import read_config, read_weights, resolve_model_spec
from ..models.lora import LORA_MARK, canonical_name
from .recipe import RecipeError

__all__ = ["ARCHITECTURE_FIELDS", "load_initial_weights"]

# The LawcatConfig fields that decide what the LAWCAT weights mean: the recipe's and the init student's must agree.
ARCHITECTURE_FIELDS = ("use_conv", "conv_kernel", "shared_conv", "feature_map", "shared_feature_map", "use_gate",
                       "gate_rank", "normalize", "use_rope", "window_size")


def load_initial_weights(student, spec: str, stage1_trains: bool = True, lora: bool = True) -> Path:
    """Copy the trained weights of the student `spec` names into `student` (a fresh linearization of the same
    teacher, with LoRA already added when the run has stage 2). Returns the student's directory; raises one
    clear error when the two do not fit.

    A student whose LoRA was merged carries changed q/k/v/o projections; the student shares them with the teacher,
    so they would change stage 1's targets (the teacher's attention): such a student can only start a run whose
    stage 1 does not train (`stage1_trains` False). `lora` False leaves the student's fresh adapters as they are
    and skips the init's."""
    path = resolve_model_spec(spec)
    if path is None:
        raise RecipeError(f"init {spec!r} is a teacher, not a lawcat student: give a run directory or a shipped "
                          "student's name")
    config = read_config(path)
    if config.merged:
        raise RecipeError(f"init {path} is a merged export (LoRA folded into the teacher's weights); start from a "
                          "run directory saved without merging (stage2.merge_lora=false)")
    if config.teacher_fingerprint != student.config.teacher_fingerprint:
        raise TeacherMismatchError(
            f"init {path} was distilled from another teacher (fingerprint {str(config.teacher_fingerprint)[:12]}, "
            f"this run's {str(student.config.teacher_fingerprint)[:12]}); use the teacher it was made from "
            f"(recorded as {config.teacher_source})")
    differ = [f"{k}: recipe {getattr(student.config, k)!r}, init {getattr(config, k)!r}"
              for k in ARCHITECTURE_FIELDS if getattr(student.config, k) != getattr(config, k)]
    if differ:
        raise RecipeError(f"the recipe's model settings differ from init {path}'s ({'; '.join(differ)}); set the "
                          "recipe's preset and model fields to the student's")
    if config.modified_teacher_params and stage1_trains:
        raise RecipeError(f"init {path} carries merged LoRA in the teacher's projections, which would change stage "
                          "1's targets; start it with stage1.epochs=0, or from a student saved with "
                          "stage2.merge_lora=false")
    tensors = read_weights(path)
    if not lora:
        tensors = {n: t for n, t in tensors.items() if LORA_MARK not in n}
    state = student.state_dict()
    by_canonical = {canonical_name(n): n for n in state}  # peft renames a wrapped projection's weight
    tensors = {by_canonical.get(canonical_name(n), n): t for n, t in tensors.items()}
    own = {n for n in state if canonical_name(n) not in student.teacher_param_names}
    lora = {n for n in own if LORA_MARK in n}
    unexpected = sorted(set(tensors) - set(state))
    missing = sorted(own - lora - set(tensors))
    if unexpected:
        hint = (" (its LoRA adapters: this run has no stage 2, or other lora_r / lora_targets)"
                if any(LORA_MARK in n for n in unexpected) else "")
        raise RecipeError(f"init {path} holds weights this run's student has not: {unexpected[:3]}{hint}")
    if missing:
        raise RecipeError(f"init {path} lacks weights of this run's student: {missing[:3]}")
    with torch.no_grad():
        for name, t in tensors.items():
            if state[name].shape != t.shape:
                raise RecipeError(f"init {path}: {name} has shape {tuple(t.shape)}, this run's student "
                                  f"{tuple(state[name].shape)}")
            state[name].copy_(t.to(state[name].dtype))
    # projections the init's merged LoRA changed are this student's too, and must be saved with it
    student.config.modified_teacher_params = sorted(set(student.config.modified_teacher_params)
                                                    | set(config.modified_teacher_params))
    return path
