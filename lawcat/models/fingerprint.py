"""Content fingerprints: which teacher a checkpoint belongs to, and whether a file is what was written.

The teacher fingerprint hashes the weights themselves (rounded to bf16, so the same teacher loaded in fp32 or
bf16, from a GGUF or from its converted copy, gives the same answer). Very large tensors are hashed on an even
stride of 2^22 elements: this identifies a teacher, it is not a security measure.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

_SAMPLE = 1 << 22


def weights_fingerprint(named_tensors) -> str:
    h = hashlib.sha256()
    for name, t in sorted(named_tensors, key=lambda kv: kv[0]):
        flat = t.detach().reshape(-1)
        if flat.numel() > _SAMPLE:
            flat = flat[:: flat.numel() // _SAMPLE][:_SAMPLE]
        h.update(f"{name}:{tuple(t.shape)};".encode())
        h.update(flat.to(torch.bfloat16).view(torch.int16).cpu().numpy().tobytes())
    return h.hexdigest()


def teacher_fingerprint(teacher: torch.nn.Module) -> str:
    """Fingerprint of a teacher model object (its parameters, tied ones counted once)."""
    return weights_fingerprint(teacher.named_parameters())


def file_sha256(path: str | Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Exact hash of a state dict (names, dtypes, shapes, every byte): stored inside our weight files."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
