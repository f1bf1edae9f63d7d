"""lawcat.analysis.needle_share: the needle's share of the normalized readout, on hand-made features and gates and
on a tiny student (where it must be the implied attention row's mass on the needle)."""
import torch

from lawcat.analysis import needle_share
from lawcat.analysis.attention_maps import layer_input, student_attention_weights
from tests.conftest import make_teacher, trained_student


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


def test_captured_share_is_the_implied_attention_rows_mass_on_the_needle():
    student = trained_student(make_teacher("llama"))
    ids = torch.randint(4, 90, (1, 30))
    needle = range(8, 13)
    layers = needle_share.share_by_layer(student, ids, needle)
    assert len(layers) == len(student.model.layers)
    for i, layer in enumerate(layers):
        x, rope = layer_input(student, ids, i)
        row = student_attention_weights(student.model.layers[i].self_attn, x, rope)[:, -1]   # [H, T]
        expected = row[:, needle.start:needle.stop].sum(-1) / row.sum(-1)
        torch.testing.assert_close(torch.tensor(layer["per_head"], dtype=torch.float64), expected, rtol=1e-5, atol=0)
        assert layer["best_head_share"] == max(layer["per_head"])
