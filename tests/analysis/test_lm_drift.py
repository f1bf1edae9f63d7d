"""lawcat.analysis.lm_drift and the LoRA switch it uses: next-token loss and KL to the teacher by position."""
import math

import pytest
import torch

from lawcat.analysis.errors import AnalysisError
from lawcat.analysis.lm_drift import drift_by_position, text_ids
from lawcat.models.lora import add_lora, set_lora_enabled
from tests.conftest import make_teacher, trained_student


class CharTokenizer:
    """One id per character, and a BOS (id 0) when special tokens are asked for."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": ([0] if add_special_tokens else []) + [ord(c) for c in text]}


def test_text_ids_joins_documents_from_the_seed_on_and_cuts():
    ids = text_ids(CharTokenizer(), ["ab", "cd", "ef"], length=8, seed=1)
    assert ids.tolist() == [[0, ord("c"), ord("d"), 10, 10, ord("e"), ord("f"), 10]]  # BOS once, docs split by \n\n
    with pytest.raises(AnalysisError, match="fewer than the 100"):
        text_ids(CharTokenizer(), ["ab"], length=100)
    with pytest.raises(AnalysisError, match="no documents"):
        text_ids(CharTokenizer(), [], length=4)


def test_drift_numbers_on_hand_made_distributions():
    ids = torch.tensor([[0, 1, 2, 0]])
    teacher = torch.tensor([[0.5, 0.25, 0.25]] * 4).log()
    same = drift_by_position(teacher, teacher.clone(), ids, bin_tokens=2)
    assert same["bins"] == [0, 2] and same["kl"] == [0.0, 0.0] and same["top1_agreement"] == [1.0, 1.0]
    assert same["nll_teacher"] == same["nll_student"]
    assert math.isclose(same["nll_teacher"][0], math.log(4), rel_tol=1e-6)  # tokens 1, 2 at p = 1/4
    assert math.isclose(same["nll_teacher"][1], math.log(2), rel_tol=1e-6)  # token 0 at p = 1/2; the last: none
    student = torch.tensor([[0.25, 0.5, 0.25]] * 4).log()
    d = drift_by_position(teacher, student, ids, bin_tokens=4)
    kl = 0.5 * math.log(2) + 0.25 * math.log(0.5)
    assert math.isclose(d["kl"][0], kl, rel_tol=1e-6) and d["top1_agreement"] == [0.0]
    with pytest.raises(AnalysisError, match="disagree on shape"):
        drift_by_position(teacher, student[:, :2], ids, 2)


def test_lora_switch_gives_back_the_student_without_adapters():
    torch.manual_seed(0)
    student = trained_student(make_teacher("llama")).eval()
    ids = torch.randint(0, student.config.vocab_size, (1, 12))
    with torch.no_grad():
        base = student(ids).logits
    assert set_lora_enabled(student, False) == 0               # no adapters yet
    add_lora(student)
    for name, p in student.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        on = student(ids).logits
        assert set_lora_enabled(student, False) == 4 * len(student.model.layers)
        off = student(ids).logits
        set_lora_enabled(student, True)
        again = student(ids).logits
    assert not torch.allclose(on, base)
    torch.testing.assert_close(off, base)
    torch.testing.assert_close(again, on)
