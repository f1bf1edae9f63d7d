"""linearize(teacher, config): swap every softmax attention of a supported teacher for LAWCAT attention.

The teacher's weights are shared, not copied (a 8B teacher is not duplicated in memory); the student records
where the teacher came from and its weight fingerprint, so a checkpoint can later be re-applied to it.
"""
from __future__ import annotations

from .config import LawcatConfig
from .modeling import LawcatForCausalLM


def linearize(teacher, config: LawcatConfig | None = None, fingerprint: str | None = None,
              **overrides) -> LawcatForCausalLM:
    """Return a LawcatForCausalLM built around `teacher` (a transformers causal LM of a supported family).

    `config` holds the LAWCAT switches (a fresh LawcatConfig() is the paper's method); keyword overrides are
    applied on top, e.g. linearize(teacher, gate_rank=16). New parameters are float32 whatever the teacher's dtype.
    """
    return LawcatForCausalLM.from_teacher(teacher, config, fingerprint, **overrides)
