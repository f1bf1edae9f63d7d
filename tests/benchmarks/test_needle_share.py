"""benchmarks/needle_share.py's needle share of the normalized readout, on hand-made features and gates."""
import importlib.util
from pathlib import Path

import torch

_spec = importlib.util.spec_from_file_location(
    "needle_share", Path(__file__).resolve().parents[2] / "benchmarks" / "needle_share.py")
needle_share = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(needle_share)


def test_uniform_features_and_no_decay_give_the_token_count_share():
    T, H, K = 50, 2, 4
    f = torch.full((T, H, K), 0.25)
    share = needle_share.needle_share(f, f, torch.zeros(T, H, K), range(10, 15), query=T - 1)
    torch.testing.assert_close(share, torch.full((H,), 5 / 50, dtype=torch.float64))


def test_aligned_needle_features_and_decay_change_the_share():
    T, K = 40, 2
    fq = torch.tensor([1.0, 0.0]).expand(T, 1, K).clone()
    fk = torch.tensor([0.0, 1.0]).expand(T, 1, K).clone()
    fk[5] = torch.tensor([1.0, 0.0])                       # only the needle's key matches the query's feature
    share = needle_share.needle_share(fq, fk, torch.zeros(T, 1, K), range(5, 6), query=T - 1)
    assert share.item() == 1.0                             # every other key is orthogonal to the query
    fk[:] = torch.tensor([1.0, 0.0])                       # now every key matches: the needle is 1 of 40 ...
    g = torch.zeros(T, 1, K)
    g[6:, 0, 0] = -0.1                                     # ... and 33 steps of decay after it make it smaller still
    share = needle_share.needle_share(fq, fk, g, range(5, 6), query=T - 1).item()
    # each key's weight: exp(-0.1 x the decaying rows after it), 34 of them for every key up to the needle's
    w = torch.exp(-0.1 * torch.arange(T - 1, -1, -1).clamp(max=T - 1 - 5).double())
    assert abs(share / (w[5] / w.sum()).item() - 1) < 1e-6   # (g is float32: -0.1 is not exact)
