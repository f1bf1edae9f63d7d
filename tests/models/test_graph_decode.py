"""StaticDecoder: decoding over fixed cache buffers gives the model's own decode steps (CPU: plain steps; CUDA: the
same through a captured graph)."""
import pytest
import torch

from lawcat.errors import LawcatError
from lawcat.models.graph_decode import StaticDecoder
from tests.conftest import jittered_student


def _prompt(device, B=2, T=90):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, :17] = 0  # left padding, as generation batches have
    return ids.to(device), mask.to(device)


def _reference(student, ids, mask, n):
    logits, cache = student.prefill(ids, attention_mask=mask)
    out = []
    for _ in range(n):
        out.append(logits)
        logits = student(input_ids=logits.argmax(-1)[:, None], past_key_values=cache, use_cache=True).logits[:, -1]
    return out, cache


def _static(student, ids, mask, n, capture):
    logits, cache = student.prefill(ids, attention_mask=mask)
    dec = StaticDecoder(student, cache, capture=capture)
    out = []
    for _ in range(n):
        out.append(logits.clone())
        logits = dec.step(logits.argmax(-1))
    return out, cache, dec


@pytest.mark.parametrize("preset", ["lawcat", "lolcats", "lawcat-rope"])
def test_static_steps_equal_the_models_own(preset):
    """Greedy steps through the fixed buffers give the same logits as the model's decode steps (window, RoPE
    positions and left padding included), and the cache ends in the same state."""
    student = jittered_student(preset)
    ids, mask = _prompt("cpu")
    with torch.no_grad():
        ref, ref_cache = _reference(student, ids, mask, 6)
        got, cache, dec = _static(student, ids, mask, 6, capture=False)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert dec.steps == 6 and cache.seen_tokens == ref_cache.seen_tokens
    for layer, ref_layer in zip(cache.layers, ref_cache.layers):
        for name, t in layer.items():
            torch.testing.assert_close(t.float(), ref_layer[name].float(), rtol=1e-5, atol=1e-5)


def test_bad_uses_are_refused():
    student = jittered_student("lawcat")
    with pytest.raises(LawcatError, match="LawcatCache of a prefill"):
        StaticDecoder(student, student.new_cache())
    ids, mask = _prompt("cpu")
    with torch.no_grad():
        _, cache = student.prefill(ids, attention_mask=mask)
    with pytest.raises(LawcatError, match="needs a CUDA cache"):
        StaticDecoder(student, cache, capture=True)
    dec = StaticDecoder(student, cache, capture=False)
    with pytest.raises(LawcatError, match="steps 2 rows"):
        dec.step(torch.zeros(3, dtype=torch.long))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset,backend", [("lawcat", "fla"), ("lawcat", "triton"), ("lolcats", "fla")])
def test_graph_replays_equal_the_models_steps_on_cuda(preset, backend):
    student = jittered_student(preset, "cuda", gla_backend=backend)
    ids, mask = _prompt("cuda", T=300)
    with torch.no_grad():
        ref, _ = _reference(student, ids, mask, 8)
        got, _, dec = _static(student, ids, mask, 8, capture=True)
    assert dec.graph is not None
    err = max(((a - b).norm() / b.norm()).item() for a, b in zip(got, ref))
    print(f"\nDECODE-GRAPH {preset} {backend}: max logits rel err over 8 steps {err:.1e}")
    assert err < 1e-4
