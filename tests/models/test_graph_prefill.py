"""GraphedPrefill: a prompt run in its left-padded, masked bucket gives the prompt's own logits and state (CPU: the
padded forward as it is; CUDA: the same through captured graphs)."""
import pytest
import torch

from lawcat.errors import LawcatError
from lawcat.models.graph_prefill import MAX_TOKENS, GraphedPrefill, bucket_of
from tests.conftest import jittered_student


def _prompt(device, B=2, T=90, pad_row=True):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    if pad_row:
        mask[1, :17] = 0  # the caller's own left padding, under the bucket's
    return ids.to(device), mask.to(device)


def _decode(student, logits, cache, n):
    """Greedy steps from a prefill: the logits of each."""
    out = [logits]
    with torch.no_grad():
        for _ in range(n):
            logits = student(input_ids=logits.argmax(-1)[:, None], past_key_values=cache, use_cache=True).logits[:, -1]
            out.append(logits)
    return out


def _assert_same_prefill(student, got, ref, tol):
    (logits, cache), (ref_logits, ref_cache) = got, ref
    torch.testing.assert_close(logits, ref_logits, rtol=tol, atol=tol)
    for layer, ref_layer in zip(cache.layers, ref_cache.layers):
        assert set(layer.state) == set(ref_layer.state)
        for name, t in layer.state.items():
            torch.testing.assert_close(t, ref_layer.state[name], rtol=tol, atol=tol, msg=name)
    assert cache.seen_tokens == ref_cache.seen_tokens
    if ref_cache.positions is not None:
        assert torch.equal(cache.positions, ref_cache.positions)
    for a, b in zip(_decode(student, logits, cache, 4), _decode(student, ref_logits, ref_cache, 4)):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_buckets_are_powers_of_two_from_the_minimum():
    assert [bucket_of(t, 64) for t in (1, 63, 64, 65, 128, 129, 1000)] == [64, 64, 64, 128, 128, 256, 1024]


@pytest.mark.parametrize("preset", ["lawcat", "lolcats", "lawcat-rope"])
@pytest.mark.parametrize("pad_row", [False, True])
def test_a_padded_bucket_gives_the_prompts_own_prefill(preset, pad_row):
    """90 tokens in a 128-token bucket (38 padded columns in front): the same last logits, the same state in every
    layer (window, RoPE positions and the caller's own padding included), the same count of columns, and decoding
    goes on from it exactly as from model.prefill."""
    student = jittered_student(preset)
    ids, mask = _prompt("cpu", pad_row=pad_row)
    prefill = GraphedPrefill(student, max_tokens=256, min_tokens=32)
    got = prefill(ids, mask)
    assert list(prefill.buckets) == [(2, 128, ids.device)]
    _assert_same_prefill(student, got, student.prefill(ids, attention_mask=mask), 1e-5)


def test_a_bucket_serves_again_and_hands_out_caches_of_its_own():
    """A second prompt in the same bucket reuses it; the first call's cache and logits are not overwritten."""
    student = jittered_student("lawcat")
    prefill = GraphedPrefill(student, max_tokens=128, min_tokens=128)
    a, _ = _prompt("cpu", T=100, pad_row=False)
    b, _ = _prompt("cpu", T=70, pad_row=False)
    b = (b + 5) % 97
    got_a = prefill(a)
    kept = got_a[0].clone(), {k: v.clone() for k, v in got_a[1].layers[0].state.items()}
    got_b = prefill(b)
    assert len(prefill.buckets) == 1
    torch.testing.assert_close(got_a[0], kept[0], rtol=0, atol=0)
    for name, t in got_a[1].layers[0].state.items():
        torch.testing.assert_close(t, kept[1][name], rtol=0, atol=0)
    _assert_same_prefill(student, got_a, student.prefill(a), 1e-5)
    _assert_same_prefill(student, got_b, student.prefill(b), 1e-5)


def test_model_prefill_graph_switch():
    """prefill(graph=True) goes through the model's GraphedPrefill for short prompts and as it is beyond 4K."""
    student = jittered_student("lawcat")
    ids, mask = _prompt("cpu")
    _assert_same_prefill(student, student.prefill(ids, attention_mask=mask, graph=True),
                         student.prefill(ids, attention_mask=mask), 1e-5)
    assert list(student._graphed_prefill.buckets) == [(2, 256, ids.device)]
    long_ids, _ = _prompt("cpu", T=MAX_TOKENS + 1, pad_row=False)
    _assert_same_prefill(student, student.prefill(long_ids, graph=True), student.prefill(long_ids), 1e-5)
    assert list(student._graphed_prefill.buckets) == [(2, 256, ids.device)]  # no bucket for it
    with pytest.raises(ValueError, match="fresh sequence"):
        student.prefill(ids, graph=True, cache=student.new_cache())


def test_inference_mode_first_does_not_spoil_later_calls():
    """A bucket made under torch.inference_mode serves later calls outside it (its buffers are ordinary tensors)."""
    student = jittered_student("lawcat")
    prefill = GraphedPrefill(student, max_tokens=128, min_tokens=128)
    ids, _ = _prompt("cpu", pad_row=False)
    with torch.inference_mode():
        first = prefill(ids)
    _assert_same_prefill(student, prefill(ids), first, 0)


def test_a_model_copy_captures_its_own_buckets():
    import copy

    student = jittered_student("lawcat")
    ids, _ = _prompt("cpu", pad_row=False)
    student.prefill(ids, graph=True)
    twin = copy.deepcopy(student)
    assert twin._graphed_prefill.model is twin and twin._graphed_prefill.buckets == {}
    _assert_same_prefill(twin, twin.prefill(ids, graph=True), student.prefill(ids, graph=True), 0)


def test_a_model_whose_tensors_moved_is_captured_again():
    student = jittered_student("lawcat")
    prefill = GraphedPrefill(student, max_tokens=128, min_tokens=128)
    ids, _ = _prompt("cpu", pad_row=False)
    prefill(ids)
    first = prefill.buckets[(2, 128, ids.device)]
    prefill(ids)
    assert prefill.buckets[(2, 128, ids.device)] is first
    student.double()  # new tensors
    got = prefill(ids)
    assert prefill.buckets[(2, 128, ids.device)] is not first
    assert got[0].dtype == torch.float64


def test_bad_uses_are_refused():
    student = jittered_student("lawcat")
    prefill = GraphedPrefill(student, max_tokens=128, min_tokens=32)
    ids, mask = _prompt("cpu", T=90)
    with pytest.raises(LawcatError, match="1 to 128 tokens"):
        prefill(torch.cat([ids, ids], 1))
    with pytest.raises(LawcatError, match="attention_mask must match"):
        prefill(ids, mask[:, 1:])
    with pytest.raises(LawcatError, match="power of two"):
        GraphedPrefill(student, max_tokens=100, min_tokens=32)
    with pytest.raises(LawcatError, match="CUDA"):
        GraphedPrefill(student, capture=True)(ids)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset,backend", [("lawcat", "triton"), ("lawcat", "fla"), ("lolcats", "auto"),
                                            ("lawcat-rope", "triton")])
def test_graph_replays_equal_the_models_prefill_on_cuda(preset, backend):
    """Captured buckets: each replay equals model.prefill, for prompts of two lengths in one bucket and another."""
    student = jittered_student(preset, "cuda", gla_backend=backend)
    prefill = GraphedPrefill(student, max_tokens=512, min_tokens=128)
    prompts, results = [_prompt("cuda", T=T) for T in (90, 120, 300)], []
    for ids, mask in prompts:
        results.append(prefill(ids, mask))
        assert prefill.buckets[(2, bucket_of(ids.shape[1], 128), ids.device)].graph is not None
    # checked after all the replays: a later replay (same bucket, or another sharing the pool) overwrote nothing
    for (ids, mask), got in zip(prompts, results):
        _assert_same_prefill(student, got, student.prefill(ids, attention_mask=mask), 2e-4)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_forward_that_cannot_be_captured_is_one_clear_error():
    """The reference GLA asks the device for a minimum (a host sync), which no capture allows."""
    student = jittered_student("lawcat", "cuda", gla_backend="reference")
    ids, mask = _prompt("cuda")
    with pytest.raises(LawcatError, match="cannot be captured"):
        GraphedPrefill(student, max_tokens=128, min_tokens=128)(ids, mask)
