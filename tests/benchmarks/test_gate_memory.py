"""benchmarks/gate_memory.py's summaries on hand-made gates (the figures in results/passkey/*/gate_memory)."""
import importlib.util
import math
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location(
    "gate_memory", Path(__file__).resolve().parents[2] / "benchmarks" / "gate_memory.py")
gate_memory = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gate_memory)


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


def test_a_gate_that_wipes_the_past_at_the_needle_leaves_it_uncrowded():
    T, needle = 50, 20
    g = torch.zeros(T, 1, 1)
    g[needle, 0, 0] = -50.0           # everything before the needle is erased as it is written
    (layer,) = gate_memory.summarize([g], needle)["layers"]
    assert math.isclose(layer["needle_crowding_best_dim"], T - needle, rel_tol=1e-6)
