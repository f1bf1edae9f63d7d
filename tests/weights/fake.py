"""A fake shipped student for tests: a tiny random Llama teacher that can read passkey prompts (a BPE tokenizer
trained on the passkey text), a LAWCAT student of it saved under a temporary registry root, and its card.

No real weights are committed under lawcat/weights: tests point lawcat.weights.ROOT at the temporary root.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from lawcat import LawcatConfig, linearize, load_teacher
from tests.conftest import make_passkey_tokenizer

CARD = {"task": "passkey", "teacher": "default", "recipe": "recipes/passkey.yaml",
        "command": "lawcat distill --recipe recipes/passkey.yaml --teacher default --out runs/pk",
        "scores": {"1024": 100.0, "32768": 96.0, "2048": 98.0}, "n": 50}


def passkey_teacher_dir(path: Path, seed: int = 0) -> Path:
    """A 2-layer random Llama with a passkey-capable tokenizer, saved as an HF directory."""
    tok = make_passkey_tokenizer()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         bos_token_id=0, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         tie_word_embeddings=True)
    LlamaForCausalLM(config).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


def ship_student(root: Path, name: str, teacher_dir: Path, card: dict | None = None) -> Path:
    """Save a (slightly perturbed, i.e. 'trained') student of `teacher_dir` as shipped student `name`."""
    teacher, _ = load_teacher(str(teacher_dir))
    student = linearize(teacher, LawcatConfig(chunk_size=16))
    with torch.no_grad():
        for p in student.lawcat_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = root / name
    student.save_pretrained(folder)
    if card is not None:
        (folder / "card.json").write_text(json.dumps(card))
    return folder
