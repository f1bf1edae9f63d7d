"""Whether a student still models language: its next-token loss on plain text beside its teacher's, and the KL from
the teacher's next-token distribution to its own, by token position.

    lawcat viz lm-drift niah-smollm2 --text books:test --length 2k --out drift.png

A task recipe's stage 2 takes its loss on the answer only (`data.loss: completion`): nothing then asks the student to
keep predicting the text around it. This view shows what that costs, and, for a student whose LoRA adapters are kept
apart, the same student with them switched off, which is the student stage 1 left (stage 2 trains only the
adapters).
"""
from __future__ import annotations

import torch

from .errors import AnalysisError

# KL is computed over the vocabulary in slices of this many positions, so two [T, V] float32 tensors are never
# joined by a third.
_SLICE = 512


def text_ids(tokenizer, texts: list[str], length: int, seed: int = 0) -> torch.Tensor:
    """[1, length]: documents joined from a seed-chosen one onwards (wrapping round), cut at `length` tokens."""
    if not texts:
        raise AnalysisError("the text source has no documents")
    ids: list[int] = []
    start = seed % len(texts)
    for i in range(len(texts)):
        ids += tokenizer(texts[(start + i) % len(texts)] + "\n\n", add_special_tokens=not ids)["input_ids"]
        if len(ids) >= length:
            return torch.tensor([ids[:length]])
    raise AnalysisError(f"the text source holds {len(ids):,} tokens, fewer than the {length:,} asked for")


@torch.no_grad()
def log_probs(model, ids: torch.Tensor) -> torch.Tensor:
    """[T, V] float32 next-token log-probabilities of a causal LM (a teacher or a student) on ids [1, T]."""
    return model(ids).logits[0].float().log_softmax(-1)


def drift_by_position(teacher_lp: torch.Tensor, student_lp: torch.Tensor, ids: torch.Tensor,
                      bin_tokens: int) -> dict:
    """Per bin of `bin_tokens` positions: both models' mean next-token loss (nats) on the text, the mean
    KL(teacher || student) of their next-token distributions, and how often their top choices agree."""
    if teacher_lp.shape != student_lp.shape:
        raise AnalysisError(f"teacher and student disagree on shape: {list(teacher_lp.shape)} vs "
                            f"{list(student_lp.shape)} (not the same vocabulary?)")
    if bin_tokens < 1:
        raise AnalysisError(f"the bin must be at least one token, got {bin_tokens}")
    T = ids.shape[1]
    kl = torch.cat([(teacher_lp[s:s + _SLICE].exp() * (teacher_lp[s:s + _SLICE] - student_lp[s:s + _SLICE])).sum(-1)
                    for s in range(0, T, _SLICE)])
    agree = (teacher_lp.argmax(-1) == student_lp.argmax(-1)).float()
    nxt = ids[0, 1:, None]
    nll_teacher = -teacher_lp[:-1].gather(-1, nxt)[:, 0]
    nll_student = -student_lp[:-1].gather(-1, nxt)[:, 0]
    starts = list(range(0, T, bin_tokens))
    # the last position predicts nothing in the text: its loss bins hold one value fewer
    return {"tokens": T, "bin_tokens": bin_tokens, "bins": starts,
            "kl": [kl[s:s + bin_tokens].mean().item() for s in starts],
            "top1_agreement": [agree[s:s + bin_tokens].mean().item() for s in starts],
            "nll_teacher": [_mean(nll_teacher[s:s + bin_tokens]) for s in starts],
            "nll_student": [_mean(nll_student[s:s + bin_tokens]) for s in starts]}


def _mean(x: torch.Tensor) -> float:
    return x.mean().item() if x.numel() else float("nan")
