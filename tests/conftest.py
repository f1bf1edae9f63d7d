"""Shared fixtures: tiny random teachers of every supported family (no downloads)."""
import os

import torch

# Without a GPU, lawcat's Triton kernels are tested under Triton's CPU interpreter; it must be switched on before
# anything (transformers included) imports triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config  # noqa: E402

_TINY = dict(vocab_size=97, hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=512)
FAMILY_CONFIGS = {  # each takes field overrides: FAMILY_CONFIGS["llama"](num_hidden_layers=3)
    "llama": lambda **kw: LlamaConfig(**{**_TINY, "num_key_value_heads": 2, "tie_word_embeddings": True, **kw}),
    "mistral": lambda **kw: MistralConfig(**{**_TINY, "num_key_value_heads": 1, "sliding_window": None, **kw}),
    "qwen2": lambda **kw: Qwen2Config(**{**_TINY, "num_key_value_heads": 2, **kw}),
    "qwen3": lambda **kw: Qwen3Config(**{**_TINY, "num_key_value_heads": 2, "head_dim": 16, **kw}),
}


def make_teacher(family: str, seed: int = 0, **config):
    """A tiny random teacher of `family`; `config` overrides fields of its config (num_hidden_layers=3, ...)."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(FAMILY_CONFIGS[family](**config)).eval()
    # Random init gives near-zero biases; make Qwen2's qkv bias matter so the test sees it.
    for layer in model.model.layers:
        for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
            if proj.bias is not None:
                torch.nn.init.normal_(proj.bias, std=0.5)
    return model


@pytest.fixture(params=list(FAMILY_CONFIGS))
def family(request):
    return request.param


@pytest.fixture
def tiny_teacher():
    return make_teacher("llama")


def trained_student(teacher, **config):
    """A student of `teacher` whose LAWCAT parameters moved away from their init (so a lost tensor shows)."""
    from lawcat import LawcatConfig, linearize

    student = linearize(teacher, LawcatConfig(chunk_size=8, **config))
    with torch.no_grad():
        for p in student.lawcat_parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return student.eval()


def jittered_student(preset: str, device="cpu", layers: int = 2, **config):
    """A 2-layer Llama student of `preset` (chunk_size 16, config overrides on top) whose LAWCAT parameters are moved
    off their identity-like init, in eval mode on `device`."""
    from lawcat import LawcatConfig, linearize

    torch.manual_seed(0)
    student = linearize(make_teacher("llama", num_hidden_layers=layers),
                        LawcatConfig.from_preset(preset, chunk_size=16, **config))
    with torch.no_grad():
        for p in student.lawcat_parameters():
            p.add_(0.05 * torch.randn_like(p))
    return student.to(device).eval()


def make_tokenizer(vocab_size: int = 97):
    """A word-level tokenizer built in memory: ids 0..vocab_size-1, '<pad>'=0, '<unk>'=1, '<s>'=2, '</s>'=3."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3}
    vocab.update({f"w{i}": i for i in range(4, vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")


def make_passkey_tokenizer():
    """A byte-level BPE tokenizer trained on the passkey prompt text (numbers included), so tiny models can
    read and answer passkey prompts: '<s>'=0 prepended, '</s>' and '<pad>' special."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from lawcat.data.passkey import FINAL_QUESTION, GARBAGE, NEEDLE, TASK_DESCRIPTION

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    text = [GARBAGE] * 10 + [TASK_DESCRIPTION, NEEDLE, FINAL_QUESTION] + [str(i) for i in range(100)]
    tk.train_from_iterator(text, trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>", "<pad>"],
                                                     show_progress=False,
                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


@pytest.fixture
def teacher_dir(tmp_path):
    """A tiny Llama teacher saved as a Hugging Face directory (weights + tokenizer)."""
    path = tmp_path / "teacher"
    make_teacher("llama").save_pretrained(path)
    make_tokenizer().save_pretrained(path)
    return path
