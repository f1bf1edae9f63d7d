"""lawcat.analysis.transfer_error: stage 1's per-layer error, by token position, on a tiny student."""
import math

import pytest
import torch

from lawcat.analysis.errors import AnalysisError
from lawcat.analysis.transfer_error import error_by_position, growth
from lawcat.distill.stage1 import per_layer_mse
from tests.conftest import make_teacher, trained_student


def test_bins_average_to_stage_ones_per_layer_error():
    student = trained_student(make_teacher("llama")).eval()
    ids = torch.randint(0, student.config.vocab_size, (1, 40))
    s = error_by_position(student, ids, bin_tokens=8)
    assert s["bins"] == [0, 8, 16, 24, 32] and s["tokens"] == 40
    assert len(s["layers"]) == len(student.model.layers) and all(len(errs) == 5 for errs in s["layers"])
    # equal bins: their mean is the whole prompt's mean per token, which is what stage 1 reports per layer
    whole = per_layer_mse(student, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    for errs, ref in zip(s["layers"], whole):
        assert math.isclose(sum(errs) / len(errs), ref, rel_tol=1e-4)
    assert all(e > 0 for errs in s["layers"] for e in errs)   # a student that is not its teacher
    assert error_by_position(student, ids, bin_tokens=16)["bins"] == [0, 16, 32]  # the last bin is shorter


def test_growth_beyond_the_trained_length():
    s = {"bin_tokens": 10, "tokens": 40, "bins": [0, 10, 20, 30], "layers": [[1, 1, 2, 4], [2, 2, 2, 2], [5, 5, 5, 5]]}
    assert growth(s, 20) == [3.0, 1.0, 1.0]
    assert math.isnan(growth(s, 5)[0])                        # no bin ends by token 5
    assert math.isnan(growth(s, 35)[0])                       # no bin starts after token 35


def test_refuses_a_batch_or_an_empty_bin():
    student = trained_student(make_teacher("llama")).eval()
    with pytest.raises(AnalysisError, match="one prompt at a time"):
        error_by_position(student, torch.zeros(2, 8, dtype=torch.long), 4)
    with pytest.raises(AnalysisError, match="at least one token"):
        error_by_position(student, torch.zeros(1, 8, dtype=torch.long), 0)
