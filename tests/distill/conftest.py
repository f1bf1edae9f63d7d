import random

import pytest

from tests.conftest import make_teacher, make_tokenizer


@pytest.fixture
def text_setup(tmp_path):
    """A tiny teacher directory and a word-level text file it can learn from."""
    teacher = tmp_path / "teacher"
    make_teacher("llama").save_pretrained(teacher)
    make_tokenizer().save_pretrained(teacher)
    r = random.Random(0)
    words = []
    for _ in range(400):
        a = r.randint(4, 30)
        words += [f"w{a}", f"w{a + 1}", f"w{a + 2}", f"w{(a * 7) % 90 + 4}"]
    text = tmp_path / "train.txt"
    text.write_text(" ".join(words))
    return teacher, text


TINY = ["data.task=text", "data.seq_len=24", "data.n_train=40", "data.n_val=4", "stage1.batch_size=4",
        "stage2.batch_size=4", "stage1.epochs=1", "stage2.epochs=1", "stage1.save_every=3", "stage2.save_every=3"]


def tiny_overrides(text):
    return TINY + [f"data.source={text}"]
