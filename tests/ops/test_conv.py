import pytest
import torch

from lawcat.ops.conv import causal_conv1d


def naive_conv(x, w):
    B, T, D = x.shape
    W = w.shape[1]
    y = torch.zeros_like(x)
    for t in range(T):
        for j in range(W):  # tap W-1 is the current token, tap W-1-d reaches d tokens back
            s = t - (W - 1 - j)
            if s >= 0:
                y[:, t] += x[:, s] * w[:, j]
    return y


@pytest.mark.parametrize("T,W", [(1, 4), (3, 4), (17, 4), (9, 2), (5, 1)])
def test_matches_naive(T, W):
    x, w = torch.randn(2, T, 6, dtype=torch.float64), torch.randn(6, W, dtype=torch.float64)
    y, state = causal_conv1d(x, w)
    torch.testing.assert_close(y, naive_conv(x, w))
    assert state.shape == (2, W - 1, 6)


@pytest.mark.parametrize("T,W", [(3, 4), (17, 4), (9, 2), (5, 1)])
def test_shift_form_matches_naive_with_and_without_state(T, W):
    x, w = torch.randn(2, T, 6, dtype=torch.float64), torch.randn(6, W, dtype=torch.float64)
    y, _ = causal_conv1d(x, w, impl="shift")
    torch.testing.assert_close(y, naive_conv(x, w))
    state = torch.randn(2, W - 1, 6, dtype=torch.float64)
    torch.testing.assert_close(causal_conv1d(x, w, state, impl="shift")[0], causal_conv1d(x, w, state)[0])


def test_unknown_impl_is_refused():
    with pytest.raises(ValueError, match="unknown conv impl"):
        causal_conv1d(torch.zeros(1, 3, 4), torch.zeros(4, 4), impl="fft")


@pytest.mark.parametrize("split", [1, 2, 7, 16])
def test_state_carry_and_steps(split):
    x, w = torch.randn(2, 17, 5, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    full, s_full = causal_conv1d(x, w)
    a, s = causal_conv1d(x[:, :split], w)
    rest = []
    for t in range(split, 17):  # token-by-token decoding after a prefill
        y, s = causal_conv1d(x[:, t:t + 1], w, s)
        rest.append(y)
    torch.testing.assert_close(torch.cat([a] + rest, 1), full)
    torch.testing.assert_close(s, s_full)


def test_bad_state_shape():
    with pytest.raises(ValueError, match="conv state has shape"):
        causal_conv1d(torch.zeros(1, 3, 4), torch.zeros(4, 4), torch.zeros(1, 2, 4))
