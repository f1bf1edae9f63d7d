import pytest
import torch

from lawcat.data import DataError, make_passkey_samples
from lawcat.data.packing import (
    IGNORE_INDEX,
    BatchIterator,
    Encoded,
    ResumableSampler,
    collate,
    encode,
    encode_all,
    pack_rows,
    pad_token_id,
)
from lawcat.data.text import TextExample


def test_task_sample_loss_on_target_only(any_tok):
    (s,) = make_passkey_samples(any_tok, 300, 1, seed=0)
    e = encode(any_tok, s)
    p = any_tok(s.prompt)["input_ids"]  # exactly what evaluation feeds the model
    t = any_tok(s.target, add_special_tokens=False)["input_ids"]
    assert e.input_ids == p + t
    assert e.labels == [IGNORE_INDEX] * len(p) + t
    whole = encode(any_tok, s, loss="all")
    n_bos = len(p) - len(any_tok(s.prompt, add_special_tokens=False)["input_ids"])
    assert whole.labels == [IGNORE_INDEX] * n_bos + whole.input_ids[n_bos:]


def test_text_prompt_completion_and_eos(tok_bpe):
    e = encode(tok_bpe, "some plain text", add_eos=True)
    assert e.input_ids[0] == tok_bpe.bos_token_id and e.input_ids[-1] == tok_bpe.eos_token_id
    assert e.labels == [IGNORE_INDEX] + e.input_ids[1:]
    pc = encode(tok_bpe, TextExample(completion=" four", prompt="Two plus two is"))
    n_prompt = len(tok_bpe("Two plus two is")["input_ids"])
    assert pc.labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert pc.labels[n_prompt:] == pc.input_ids[n_prompt:] != []
    assert encode(tok_bpe, ("Two plus two is", " four")) == pc
    with pytest.raises(DataError, match="max_length"):
        encode_all(tok_bpe, ["word " * 100], max_length=10)
    with pytest.raises(DataError, match="loss"):
        encode(tok_bpe, "x", loss="prompt")
    with pytest.raises(DataError, match="cannot encode"):
        encode(tok_bpe, 3)
    with pytest.raises(DataError, match="eos"):
        encode(tok_word_like(), "x", add_eos=True)


def tok_word_like():
    class NoEos:
        eos_token_id = None

        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [1] * len(text.split())}
    return NoEos()


def test_pack_rows():
    enc = [Encoded(list(range(i * 10, i * 10 + 7)), [IGNORE_INDEX] + list(range(i * 10 + 1, i * 10 + 7)))
           for i in range(5)]
    rows = pack_rows(enc, 8)
    flat = [t for e in enc for t in e.input_ids]
    assert [t for r in rows for t in r.input_ids] == flat
    assert [t for r in rows for t in r.labels] == [t for e in enc for t in e.labels]
    assert [len(r) for r in rows] == [8, 8, 8, 8, 3]
    assert [len(r) for r in pack_rows(enc, 8, drop_last=True)] == [8, 8, 8, 8]
    with pytest.raises(DataError):
        pack_rows(enc, 1)


def test_collate_padding():
    batch = [Encoded([5, 6, 7], [IGNORE_INDEX, 6, 7]), Encoded([8], [8])]
    out = collate(batch, pad_id=0)
    assert out["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    left = collate(batch, pad_id=0, padding_side="left", pad_to_multiple_of=4)
    assert left["input_ids"].tolist() == [[0, 5, 6, 7], [0, 0, 0, 8]]
    assert left["labels"].tolist() == [[-100, -100, 6, 7], [-100, -100, -100, 8]]
    assert out["input_ids"].dtype == torch.long
    with pytest.raises(DataError):
        collate([], 0)


def test_sampler_epochs_are_permutations_and_seeded():
    lengths = list(range(23))
    s = ResumableSampler(lengths, 4, seed=1)
    e0, e1 = s.epoch_batches(0), s.epoch_batches(1)
    assert sorted(i for b in e0 for i in b) == lengths and sorted(i for b in e1 for i in b) == lengths
    assert e0 != e1 and e0 == ResumableSampler(lengths, 4, seed=1).epoch_batches(0)
    assert e0 != ResumableSampler(lengths, 4, seed=2).epoch_batches(0)
    assert all(len(b) == 4 for b in ResumableSampler(lengths, 4, drop_last=True).epoch_batches(0))
    assert ResumableSampler(lengths, 4, shuffle=False).epoch_batches(0)[0] == [0, 1, 2, 3]


def test_bucketing_groups_similar_lengths():
    lengths = [(i * 37) % 100 + 1 for i in range(400)]
    batches = ResumableSampler(lengths, 8, seed=0, bucket=True, bucket_window=50).epoch_batches(0)
    assert sorted(i for b in batches for i in b) == list(range(400))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    plain = ResumableSampler(lengths, 8, seed=0).epoch_batches(0)
    plain_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in plain) / len(plain)
    assert spread < plain_spread / 5


@pytest.mark.parametrize("stop_after", [0, 3, 6, 7, 13])
def test_resume_gives_the_same_order(stop_after):
    lengths = [3, 9, 4, 7, 1, 8, 2, 6, 5, 10, 11, 12, 2]
    ref = ResumableSampler(lengths, 2, seed=5, bucket=True, bucket_window=2, epochs=3)
    full = list(ref)
    assert len(full) == 3 * 7
    run = ResumableSampler(lengths, 2, seed=5, bucket=True, bucket_window=2, epochs=3)
    it = iter(run)
    got = [next(it) for _ in range(stop_after)]
    state = run.state_dict()
    resumed = ResumableSampler(lengths, 2, seed=5, bucket=True, bucket_window=2, epochs=3)
    resumed.load_state_dict(state)
    assert got + list(resumed) == full
    with pytest.raises(DataError, match="same seed"):
        ResumableSampler(lengths, 2, seed=6).load_state_dict(state)


def test_batch_iterator_resume_with_tensors(tok_bpe):
    enc = encode_all(tok_bpe, [f"text number {i} " * (i % 5 + 1) for i in range(10)])
    pad = pad_token_id(tok_bpe)
    a = BatchIterator(enc, 3, pad, seed=0, epochs=2)
    assert len(a) == 4
    full = list(a)
    b = BatchIterator(enc, 3, pad, seed=0, epochs=2)
    it = iter(b)
    first = [next(it) for _ in range(5)]
    c = BatchIterator(enc, 3, pad, seed=0, epochs=2)
    c.load_state_dict(b.state_dict())
    rest = list(c)
    assert len(first) + len(rest) == len(full) == 8
    for x, y in zip(first + rest, full):
        assert all(torch.equal(x[k], y[k]) for k in ("input_ids", "attention_mask", "labels"))
    for batch in full:
        assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_sampler_bad_inputs():
    with pytest.raises(DataError):
        ResumableSampler([], 2)
    with pytest.raises(DataError):
        ResumableSampler([1, 2], 0)
    with pytest.raises(DataError, match="drop_last"):
        ResumableSampler([1, 2], 4, drop_last=True)
