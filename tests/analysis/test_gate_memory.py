"""lawcat.analysis.gate_memory's summaries on hand-made gates (the figures in results/passkey/*/gate_memory)."""
import math

import pytest
import torch

from lawcat.analysis import gate_memory
from lawcat.analysis.errors import AnalysisError
from tests.conftest import make_teacher, trained_student


def test_summaries_of_a_forgetting_and_a_remembering_dimension():
    T, needle = 101, 10
    g = torch.zeros(T, 1, 2)
    g[:, 0, 0] = -math.log(2) / 5     # half-life 5 tokens: the needle's term is gone at distance 90
    g[:, 0, 1] = 0.0                  # no decay: the needle survives, but so does every other token
    (layer,) = gate_memory.summarize([g], needle)["layers"]
    assert math.isclose(layer["needle_log_retention_best"], 0.0, abs_tol=1e-9)   # dim 1 keeps it whole
    assert math.isclose(layer["needle_crowding_in_best_retaining_dim"], T, rel_tol=1e-6)  # among T equal terms
    assert layer["share_of_dims_with_half_life_over_needle_distance"] == 0.5
    assert math.isclose(layer["half_life_median"], 5.0, rel_tol=1e-4)  # torch.median: the lower of the two
    assert len(layer["half_life_median_per_head"]) == 1
    assert math.isclose(layer["half_life_median_per_head"][0], 5.0, rel_tol=1e-4)


def test_a_gate_that_wipes_the_past_at_the_needle_leaves_it_uncrowded():
    T, needle = 50, 20
    g = torch.zeros(T, 1, 1)
    g[needle, 0, 0] = -50.0           # everything before the needle is erased as it is written
    (layer,) = gate_memory.summarize([g], needle)["layers"]
    assert math.isclose(layer["needle_crowding_best_dim"], T - needle, rel_tol=1e-6)


def test_per_head_half_lives_and_captured_gates():
    g = torch.zeros(20, 2, 3)
    g[:, 0] = -math.log(2) / 4        # head 0: half-life 4 in every dim
    g[:, 1] = -math.log(2) / 100      # head 1: half-life 100
    (layer,) = gate_memory.summarize([g], needle=5)["layers"]
    assert [round(h, 3) for h in layer["half_life_median_per_head"]] == [4.0, 100.0]
    student = trained_student(make_teacher("llama"))
    gates = gate_memory.capture_gates(student, torch.randint(4, 90, (1, 13)), chunk=5)   # three prefill chunks
    assert [tuple(x.shape) for x in gates] == [(13, 4, 12)] * len(student.model.layers)
    assert all(bool((x <= 0).all()) for x in gates)


def test_a_student_without_gates_is_refused():
    with pytest.raises(AnalysisError, match="no gate"):
        gate_memory.capture_gates(trained_student(make_teacher("llama"), use_gate=False), torch.ones(1, 4).long(), 4)
