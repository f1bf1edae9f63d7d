"""Stage 2's LoRA through peft: add adapters to q/k/v/o, merge them into the projections, or keep them apart.

peft wraps each target Linear in place (q_proj -> q_proj.base_layer + lora_A/lora_B), so checkpoint code
compares parameter names through `canonical_name`, which strips peft's `.base_layer`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

LORA_MARK = ".lora_"


def canonical_name(name: str) -> str:
    return name.replace(".base_layer", "")


def add_lora(student, r: int = 8, alpha: int = 16, dropout: float = 0.0,
             targets=("q_proj", "k_proj", "v_proj", "o_proj")):
    """Inject LoRA adapters (peft) into the student's attention projections; records the settings in its config."""
    from peft import LoraConfig, inject_adapter_in_model

    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none")
    inject_adapter_in_model(cfg, student.model, adapter_name="default")
    student.config.lora = {"r": r, "alpha": alpha, "dropout": dropout, "targets": list(targets)}
    return [p for n, p in student.named_parameters() if LORA_MARK in n]


def lora_parameters(student):
    return [p for n, p in student.named_parameters() if LORA_MARK in n]


def set_lora_enabled(student, enabled: bool) -> int:
    """Switch every adapter on or off in place (off: the student as stage 1 left it, since stage 2 trains only the
    adapters). Returns how many layers carry one: 0 for a student without adapters or with them folded in."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in student.modules() if isinstance(m, BaseTunerLayer)]
    for m in layers:
        m.enable_adapters(enabled)
    return len(layers)


def merge_lora(student) -> list[str]:
    """Fold every adapter into its base weight and unwrap it. Returns the teacher tensors now changed.

    The student shares the teacher's weight tensors, so merging changes the teacher object too. A merged weight
    is float32 even where the teacher is bf16 (teacher_dtype): a LoRA update is often smaller than bf16's spacing
    at the weight it is added to, and rounding the sum would drop it.
    """
    from peft.tuners.lora import LoraLayer

    changed = []
    for parent_name, parent in list(student.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, LoraLayer):
                base = child.get_base_layer()
                with torch.no_grad():
                    base.weight.data = base.weight.data.float()
                    child.merge()
                setattr(parent, child_name, child.get_base_layer())
                prefix = f"{parent_name}.{child_name}" if parent_name else child_name
                changed.append(f"{prefix}.weight")  # bias="none": LoRA never touches biases
    student.config.modified_teacher_params = sorted(set(student.config.modified_teacher_params) | set(changed))
    student.config.lora = None
    return changed


def merge_lora_state(state: dict, alpha: float, r: int, config) -> dict:
    """Merge LoRA inside a full state dict (for sharded models, where the modules hold only shards):
    W <- W + (alpha / r) B A in float32 (see merge_lora), adapters dropped, `.base_layer` names restored. Records
    the changed tensors."""
    scale = alpha / r
    out, changed = {}, []
    for name, t in state.items():
        if LORA_MARK in name:
            continue
        if ".base_layer." in name and name.endswith(".weight"):
            prefix = name[: -len(".base_layer.weight")]
            a, b = state[f"{prefix}.lora_A.default.weight"], state[f"{prefix}.lora_B.default.weight"]
            t = t.float() + scale * (b.float() @ a.float())
            changed.append(f"{prefix}.weight")
        out[canonical_name(name)] = t
    config.modified_teacher_params = sorted(set(config.modified_teacher_params) | set(changed))
    config.lora = None
    return out


@dataclass
class FoldedLora:
    """A student's LoRA as its files held it, kept when loading folds it into the projections: saving such a
    student writes this form again (a few MB, adapters that can train further), not its folded projections, so
    load -> save round-trips. Saving writes LAWCAT's tensors and LoRA, never the teacher's: a change made to the
    folded projections after loading is not saved, as a change to any teacher weight is not."""
    lora: dict
    modified_teacher_params: list
    tensors: dict


def folds_on_load(fold_lora: bool | str, teacher_given: bool, dtype: torch.dtype) -> bool:
    """Whether a student whose LoRA adapters were saved apart gets them folded into q/k/v/o as it loads.

    Unfolded, every projection runs three matrix products instead of one: on 2 CPU cores that is ~30 % of a decode
    step of the shipped 135M student (137 -> 90-107 ms, fp32), and ~240 extra kernels per step on a GPU. "auto"
    folds when it changes nothing else: in float32 (a merged weight is float32 anyway, see merge_lora; in bf16
    rounding W + BA can drop an update smaller than bf16's spacing), and only into a teacher the load itself made
    (the student shares the teacher's tensors, so folding changes a teacher passed in). False keeps the adapters
    apart, to train them further; True folds always."""
    if fold_lora == "auto":
        return dtype == torch.float32 and not teacher_given
    if isinstance(fold_lora, bool):
        return fold_lora
    raise ValueError(f"fold_lora must be True, False or 'auto', got {fold_lora!r}")


def fold_on_load(student, saved: dict) -> None:
    """merge_lora on a student just loaded from `saved` (its weight file's tensors), remembering the adapters
    as saved (student.folded_lora, a FoldedLora) so that saving it writes them again."""
    folded = FoldedLora(dict(student.config.lora), list(student.config.modified_teacher_params),
                        {n: t for n, t in saved.items() if LORA_MARK in n})
    merge_lora(student)
    student.folded_lora = folded
