"""linearize(teacher, config): swap every softmax attention of a supported teacher for LAWCAT attention.

The teacher's weights are shared, not copied (a 8B teacher is not duplicated in memory); the student records
where the teacher came from and its weight fingerprint, so a checkpoint can later be re-applied to it.
"""
from __future__ import annotations

import copy

from .config import SUPPORTED_FAMILIES, LawcatConfig
from .errors import UnsupportedTeacherError
from .fingerprint import teacher_fingerprint
from .modeling import LawcatForCausalLM

_DROP_KEYS = ("quantization_config", "_name_or_path", "transformers_version", "architectures")


def teacher_config_dict(teacher_config) -> dict:
    data = teacher_config.to_dict()
    for key in _DROP_KEYS:
        data.pop(key, None)
    return data


def linearize(teacher, config: LawcatConfig | None = None, fingerprint: str | None = None,
              **overrides) -> LawcatForCausalLM:
    """Return a LawcatForCausalLM built around `teacher` (a transformers causal LM of a supported family).

    `config` holds the LAWCAT switches (a fresh LawcatConfig() is the paper's method); keyword overrides are
    applied on top, e.g. linearize(teacher, gate_rank=16). New parameters are float32 whatever the teacher's dtype.
    """
    family = getattr(getattr(teacher, "config", None), "model_type", None)
    if family not in SUPPORTED_FAMILIES:
        raise UnsupportedTeacherError(
            f"teacher architecture {family!r} is not supported; lawcat supports {', '.join(SUPPORTED_FAMILIES)}"
        )
    cfg = copy.deepcopy(config) if config is not None else LawcatConfig()
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"unknown LawcatConfig field {key!r}")
        setattr(cfg, key, value)
    cfg.teacher_config = teacher_config_dict(teacher.config)
    cfg.tie_word_embeddings = bool(teacher.config.tie_word_embeddings)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(cfg, key, getattr(teacher.config, key, None))
    cfg.teacher_source = getattr(teacher, "lawcat_source", None) or cfg.teacher_source
    cfg.teacher_file_sha256 = getattr(teacher, "lawcat_file_sha256", None) or cfg.teacher_file_sha256
    cfg.teacher_fingerprint = fingerprint or teacher_fingerprint(teacher)
    cfg.validate()
    if cfg.attn_head_dim % 2:
        raise UnsupportedTeacherError(f"head_dim {cfg.attn_head_dim} is odd; the Hedgehog feature map needs an even one")
    device = next(teacher.parameters()).device
    student = LawcatForCausalLM(cfg, teacher=teacher)
    for p in student.lawcat_parameters():
        p.data = p.data.to(device)
    student.generation_config = copy.deepcopy(teacher.generation_config)
    student.tokenizer = getattr(teacher, "lawcat_tokenizer", None)
    return student
