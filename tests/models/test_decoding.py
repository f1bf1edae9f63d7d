"""Recurrent decoding: prefill + step-by-step == one full forward; left padding == rows alone; generate()."""
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from lawcat import LawcatConfig, linearize
from lawcat.models import UnsupportedTeacherError
from tests.conftest import make_teacher


def _randomize_new(student, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in student.lawcat_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return student


def _student(family, preset="lawcat", **kw):
    cfg = LawcatConfig.from_preset(preset, chunk_size=8, **kw)
    return _randomize_new(linearize(make_teacher(family), cfg)).eval()


@pytest.mark.parametrize("preset,kw", [("lawcat", {}), ("lolcats", {"window_size": 6}), ("lawcat-rope", {}),
                                       ("lawcat-shared-conv", {})])
def test_prefill_then_decode_equals_full_forward(family, preset, kw):
    student = _student(family, preset, **kw)
    ids = torch.randint(0, 97, (2, 29))
    with torch.no_grad():
        full = student(ids).logits
        out = student(ids[:, :13], use_cache=True)
        cache, steps = out.past_key_values, [out.logits]
        for t in range(13, 29):
            o = student(ids[:, t:t + 1], past_key_values=cache, use_cache=True)
            steps.append(o.logits)
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=1e-4, atol=1e-4)


def test_chunked_prefill_equals_full_forward():
    student = _student("llama")
    ids = torch.randint(0, 97, (1, 50))
    with torch.no_grad():
        full = student(ids).logits[:, -1]
        last, cache = student.prefill(ids, chunk_size=7)
    torch.testing.assert_close(last, full, rtol=1e-4, atol=1e-4)
    assert cache.get_seq_length() == 50


@pytest.mark.parametrize("preset,kw", [("lolcats", {"window_size": 6}), ("lawcat-rope", {}),
                                       ("lawcat-swa64", {"window_size": 6})])
def test_chunked_prefill_then_decode_equals_full_forward(family, preset, kw):
    """RoPE positions continue across prefill chunks and decoding steps: every logit equals one full forward's."""
    student = _student(family, preset, **kw)
    ids = torch.randint(0, 97, (2, 40))
    with torch.no_grad():
        full = student(ids).logits
        last, cache = student.prefill(ids[:, :27], chunk_size=7)
        steps = [last[:, None]] + [student(ids[:, t:t + 1], past_key_values=cache, use_cache=True).logits
                                   for t in range(27, 40)]
    torch.testing.assert_close(torch.cat(steps, 1), full[:, 26:], rtol=1e-4, atol=1e-4)
    if student.config.use_rope:
        assert cache.positions.tolist() == [40, 40]


@pytest.mark.parametrize("preset,kw", [("lolcats", {"window_size": 5}), ("lawcat-rope", {})])
def test_left_padded_chunked_prefill_then_decode_equals_rows_alone(preset, kw):
    """A row's RoPE positions count its real tokens only, through chunks that are all padding for it, so under
    left padding each row's logits equal those of the row run alone."""
    student = _student("qwen2", preset, **kw)
    rows = [torch.randint(1, 97, (n,)) for n in (23, 9, 30)]
    more = torch.randint(1, 97, (3, 5))  # tokens fed one at a time after the prompt
    T = 30
    ids, mask = torch.zeros(3, T, dtype=torch.long), torch.zeros(3, T + 5, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, T - len(r):], mask[i, T - len(r):] = r, 1
    mask[:, T:] = 1
    with torch.no_grad():
        last, cache = student.prefill(ids, attention_mask=mask[:, :T], chunk_size=7)
        got = [last] + [student(more[:, j:j + 1], attention_mask=mask[:, :T + j + 1], past_key_values=cache,
                                use_cache=True).logits[:, -1] for j in range(5)]
        got = torch.stack(got, 1)
        for i, r in enumerate(rows):
            alone = student(torch.cat([r, more[i]])[None]).logits[0, len(r) - 1:]
            torch.testing.assert_close(got[i], alone, rtol=1e-4, atol=1e-4)
    assert cache.positions.tolist() == [23 + 5, 9 + 5, 30 + 5]


def test_explicit_position_ids_are_used_and_continued():
    """position_ids are honoured as the teacher honours them, and the cache continues after them."""
    student = _student("llama", "lolcats", window_size=4)
    ids = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        started = student.new_cache()
        started.positions = torch.tensor([7, 7])
        want = student(ids, past_key_values=started, use_cache=True).logits
        given = student.new_cache()
        got = student(ids, position_ids=torch.arange(7, 16)[None], past_key_values=given, use_cache=True).logits
        plain = student(ids).logits
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got, plain, rtol=1e-4, atol=1e-4)  # the positions matter
    assert given.positions.tolist() == [16, 16]


def test_cache_size_is_constant_in_context_length():
    student = _student("llama")
    sizes = []
    for T in (10, 100, 400):
        _, cache = student.prefill(torch.randint(0, 97, (1, T)), chunk_size=64)
        sizes.append(cache.nbytes())
    assert sizes[0] == sizes[1] == sizes[2] > 0


@pytest.mark.parametrize("preset,kw", [("lawcat", {}), ("lolcats", {"window_size": 4}), ("lawcat-rope", {})])
def test_left_padded_batch_equals_rows_alone(family, preset, kw):
    student = _student(family, preset, **kw)
    rows = [torch.randint(1, 97, (n,)) for n in (11, 4, 17)]
    T = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), T, dtype=torch.long)
    mask = torch.zeros(len(rows), T, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, T - len(r):], mask[i, T - len(r):] = r, 1
    with torch.no_grad():
        batch = student.generate(ids, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)
        batch_logits = student(ids, attention_mask=mask).logits
        for i, r in enumerate(rows):
            alone = student.generate(r[None], attention_mask=torch.ones(1, len(r), dtype=torch.long),
                                     max_new_tokens=6, do_sample=False, pad_token_id=0)
            assert torch.equal(batch[i, T:], alone[0, len(r):]), f"row {i} differs under padding"
            torch.testing.assert_close(batch_logits[i, T - len(r):], student(r[None]).logits[0], rtol=1e-4, atol=1e-4)


def test_generate_matches_manual_greedy_loop():
    student = _student("qwen3")
    ids = torch.randint(0, 97, (1, 12))
    with torch.no_grad():
        gen = student.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
        seq = ids
        for _ in range(8):
            seq = torch.cat([seq, student(seq).logits[:, -1:].argmax(-1)], 1)
    assert torch.equal(gen, seq)


def test_unsupported_architecture_is_named():
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    with pytest.raises(UnsupportedTeacherError, match="'gpt2' is not supported.*llama, mistral, qwen2, qwen3"):
        linearize(gpt2)


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="unknown preset"):
        LawcatConfig.from_preset("nope")
    with pytest.raises(ValueError, match="unknown LawcatConfig field"):
        linearize(make_teacher("llama"), LawcatConfig(), not_a_field=1)


def test_training_forward_has_loss_and_gradients_reach_new_params():
    student = _student("mistral")
    student.train()
    ids = torch.randint(0, 97, (2, 21))
    out = student(ids, labels=ids)
    out.loss.backward()
    assert out.past_key_values is None
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in student.lawcat_parameters())
