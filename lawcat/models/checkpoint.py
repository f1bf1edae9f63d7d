"""Saving and loading students: small, self-verifying, atomic.

A run directory holds config.json (the LawcatConfig with the teacher's source, file sha256 and weight
fingerprint), the tokenizer files, and model.safetensors with only the tensors that are not the teacher's: the
convs, maps, gates (and LoRA or LoRA-merged projections). A merged export stores every tensor instead and
needs no teacher. Every file is written to a temporary name, fsynced and renamed, so an interrupted save leaves
the previous checkpoint intact. The weight file carries a sha256 of its tensors in its own header, so a
truncated or corrupted file is refused with a clear error instead of loading garbage.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, atomic_write_text
from .config import LawcatConfig
from .errors import CheckpointError, TeacherMismatchError, UnknownModelError
from .fingerprint import teacher_fingerprint, tensors_sha256

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_DIGEST_KEY = "lawcat_tensors_sha256"


def save_weights(tensors: dict[str, torch.Tensor], path: Path, extra_metadata: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {"format": "pt", _DIGEST_KEY: tensors_sha256(tensors), **(extra_metadata or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load and verify a weight file we wrote; any damage is a CheckpointError naming the file."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: this directory is not a complete lawcat checkpoint")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is truncated or corrupt ({e}); re-save or restore it from a copy") from e
    expected = metadata.get(_DIGEST_KEY)
    if expected is None:
        raise CheckpointError(f"{path} carries no lawcat checksum; it was not written by lawcat")
    if tensors_sha256(tensors) != expected:
        raise CheckpointError(f"{path} is corrupt: its tensors do not match the checksum written with them")
    return tensors


def save_student(model, save_directory, tokenizer=None, merged: bool = False, state: dict | None = None) -> Path:
    """`state` replaces model.state_dict() (a sharded model passes its gathered, LoRA-merged tensors)."""
    path = Path(save_directory)
    path.mkdir(parents=True, exist_ok=True)
    state = dict(state) if state is not None else model.state_dict()
    if merged:
        # Tied weights are stored once; loading re-ties them through the architecture.
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        tensors = dict(state)
    else:
        tensors = {n: t for n, t in state.items() if _canonical(n) not in model.teacher_param_names}
        tensors.update({n: t for n, t in state.items() if _canonical(n) in model.config.modified_teacher_params})
    config = LawcatConfig.from_dict(model.config.to_dict())
    config.merged = merged
    save_weights(tensors, path / WEIGHTS_NAME)
    atomic_write_text(path / CONFIG_NAME, config.to_json_string())
    tokenizer = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tokenizer is not None:
        tmp = Path(tempfile.mkdtemp(prefix=".tokenizer.", dir=path))
        try:
            tokenizer.save_pretrained(tmp)
            for f in tmp.iterdir():
                os.replace(f, path / f.name)
        finally:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    return path


def is_run_dir(path) -> bool:
    """True for a directory whose config.json is a LawcatConfig (a student run or a merged export)."""
    file = Path(path) / CONFIG_NAME
    if not file.is_file():
        return False
    try:
        return json.loads(file.read_text()).get("model_type") == "lawcat"
    except (OSError, ValueError, AttributeError):
        return False


def resolve_model_spec(spec) -> Path | None:
    """What a model spec typed by a user names: the student run directory (a path, or a shipped name such as
    'passkey-smollm2'), or None for a teacher ('default', 'random:<arch>', an existing file or directory).

    Anything else raises UnknownModelError listing the shipped names, so a misspelt name is reported as
    such instead of as a missing teacher. A path on disk wins over a shipped name of the same spelling.
    """
    from ..weights import is_shipped, shipped_names_text, shipped_path

    text = str(spec)
    if is_run_dir(text):
        return Path(text)
    if Path(text).expanduser().exists():
        return None  # a teacher file or directory (load_teacher says what is wrong with it, if anything)
    if is_shipped(text):
        return shipped_path(text)
    if text == "default" or text.startswith("random:"):  # load_teacher's named teachers
        return None
    raise UnknownModelError(f"{text!r} is not a file or directory, 'default', nor a shipped student "
                            f"({shipped_names_text()})")


def read_config(path: Path) -> LawcatConfig:
    file = path / CONFIG_NAME
    if not file.is_file():
        raise CheckpointError(f"{path} has no {CONFIG_NAME}: not a lawcat checkpoint directory")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file} is corrupt ({e}); restore it from a copy") from e
    if data.get("model_type") != "lawcat":
        raise CheckpointError(f"{file} is not a lawcat config (model_type={data.get('model_type')!r})")
    return LawcatConfig.from_dict(data)


def load_student(save_directory, teacher=None, device=None, dtype=None):
    """Rebuild a student from a run directory, with `teacher` or the teacher recorded in its config."""
    from transformers import AutoTokenizer

    from .linearize import linearize
    from .modeling import LawcatForCausalLM
    from .teacher import load_teacher

    from ..weights import is_shipped, shipped_names_text, shipped_path

    path = Path(save_directory)
    if not path.exists() and is_shipped(save_directory):  # a path on disk wins over a shipped name
        path = shipped_path(str(save_directory))
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; give a lawcat run directory or a shipped student's name "
                              f"({shipped_names_text()})")
    config = read_config(path)
    tensors = load_weights(path / WEIGHTS_NAME)
    if config.merged:
        model = LawcatForCausalLM(config)
        _load_into(model, tensors, strict_all=True)
    else:
        if teacher is None:
            if not config.teacher_source:
                raise CheckpointError(f"{path} does not record its teacher; pass teacher=<model> explicitly")
            teacher, _ = load_teacher(config.teacher_source, dtype=dtype)
        found = teacher_fingerprint(teacher)
        if found != config.teacher_fingerprint:
            raise TeacherMismatchError(
                f"this checkpoint was distilled from a different teacher (fingerprint {config.teacher_fingerprint[:12]}, "
                f"given {found[:12]}); pass the teacher it was made from ({config.teacher_source})"
            )
        model = linearize(teacher, config, fingerprint=found)
        _load_into(model, tensors, strict_all=False)
    if (path / "tokenizer_config.json").is_file():
        model.tokenizer = AutoTokenizer.from_pretrained(path)
    if dtype is not None:
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval()


def _canonical(name: str) -> str:
    return name.replace(".base_layer", "")  # peft wraps LoRA targets; the tensor is still the teacher's


def _load_into(model, tensors: dict, strict_all: bool) -> None:
    if model.config.lora:
        from ..distill.lora import add_lora

        lo = model.config.lora
        add_lora(model, lo["r"], lo["alpha"], lo["dropout"], lo["targets"])
    state = model.state_dict()
    unexpected = sorted(set(tensors) - set(state))
    own = {n for n in state if _canonical(n) not in model.teacher_param_names}
    if strict_all:
        missing = sorted(set(state) - set(tensors) - ({"lm_head.weight"} if model.config.tie_word_embeddings else set()))
    else:
        missing = sorted(own - set(tensors))
    if unexpected or missing:
        raise CheckpointError(
            "checkpoint does not fit this model: "
            + (f"unexpected {unexpected[:5]} " if unexpected else "")
            + (f"missing {missing[:5]}" if missing else "")
        )
    with torch.no_grad():
        for name, t in tensors.items():
            state[name].copy_(t.to(state[name].dtype))
