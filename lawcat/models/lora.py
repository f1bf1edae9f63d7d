"""Stage 2's LoRA through peft: add adapters to q/k/v/o, merge them into the projections, or keep them apart.

peft wraps each target Linear in place (q_proj -> q_proj.base_layer + lora_A/lora_B), so checkpoint code
compares parameter names through `canonical_name`, which strips peft's `.base_layer`.
"""
from __future__ import annotations

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
