"""Saving and loading students: small, self-verifying, atomic, and readable by transformers' Auto classes.

A run directory holds config.json (the LawcatConfig with the teacher's source, file sha256 and weight
fingerprint), generation_config.json, the tokenizer files, modeling_lawcat.py (what `trust_remote_code=True`
imports: it re-exports the installed lawcat package's classes, see AUTO_MODULE_SOURCE) and model.safetensors with
only the tensors that are not the teacher's: the convs, maps, gates (and LoRA or LoRA-merged projections). A
merged export stores every tensor instead and needs no teacher. With max_shard_size the tensors go to
model-0000i-of-0000n.safetensors plus model.safetensors.index.json, as transformers shards them.

Every file is written to a temporary name, fsynced and renamed, so an interrupted single-file save leaves the
previous checkpoint intact. Each weight file carries a sha256 of its tensors in its own header (and the index
the sha256 of each shard), so a truncated, corrupted or mixed-up file is refused with a clear error instead of
loading garbage; a weight file written by another tool (no lawcat checksum at all) loads with a warning.

The teacher is recorded portably (lawcat.models.teacher.portable_source: a name, a path relative to
$LAWCAT_TEACHER_ROOT, or "~/..."); `teacher=` on loading overrides where it is found, and whatever teacher is
used must have the recorded weight fingerprint.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..atomic import atomic_path, atomic_write_text
from ..errors import CheckpointError, TeacherLoadError, TeacherMismatchError, UnknownModelError
from .config import LawcatConfig
from .fingerprint import teacher_fingerprint, tensors_sha256
from .lora import add_lora, canonical_name, fold_on_load, folds_on_load
from .teacher import portable_source

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
CONFIG_NAME = "config.json"
GENERATION_CONFIG_NAME = "generation_config.json"
AUTO_MODULE = "modeling_lawcat"
_SHARD_NAME = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
_DIGEST_KEY = "lawcat_tensors_sha256"
_SHARD_DIGESTS_KEY = "lawcat_shards_sha256"

AUTO_MODULE_SOURCE = '''"""Lets transformers' Auto classes load this lawcat student without `import lawcat`:

    AutoModelForCausalLM.from_pretrained("<this folder>", trust_remote_code=True)

The model code is not copied into the checkpoint: this module re-exports the classes of the `lawcat` package,
which must be installed in the environment that loads the folder (`pip install lawcat`, or `pip install -e .` in
its repository). lawcat's save_pretrained writes this file with every checkpoint.
"""
try:
    from lawcat.models.config import LawcatConfig
    from lawcat.models.modeling import LawcatForCausalLM
except ImportError as e:
    raise ImportError("this folder holds a lawcat student: install the `lawcat` package to load it "
                      f"(importing it failed: {e})") from e

__all__ = ["LawcatConfig", "LawcatForCausalLM"]
'''


class ForeignCheckpointWarning(UserWarning):
    """A weight file without lawcat's checksum was loaded unverified."""


def save_weights(tensors: dict[str, torch.Tensor], path: Path, extra_metadata: dict | None = None) -> str:
    """Write `tensors` atomically with their sha256 in the header; returns that sha256."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    digest = tensors_sha256(tensors)
    metadata = {"format": "pt", _DIGEST_KEY: digest, **(extra_metadata or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return digest


def load_weights(path: Path, expected_digest: str | None = None) -> dict[str, torch.Tensor]:
    """Load and verify a weight file; any damage is a CheckpointError naming the file.

    A file without a lawcat checksum (written by another tool) loads with a ForeignCheckpointWarning; one whose
    checksum is present but does not match its tensors, or differs from `expected_digest` (the shard an index
    names), is refused."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: this directory is not a complete lawcat checkpoint")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is truncated or corrupt ({e}); re-save or restore it from a copy") from e
    found = metadata.get(_DIGEST_KEY)
    if found is None:
        warnings.warn(f"{path} carries no lawcat checksum (written by another tool?): loading it unverified",
                      ForeignCheckpointWarning, stacklevel=3)
        return tensors
    if tensors_sha256(tensors) != found:
        raise CheckpointError(f"{path} is corrupt: its tensors do not match the checksum written with them")
    if expected_digest is not None and expected_digest != found:
        raise CheckpointError(f"{path} is not the shard {WEIGHTS_INDEX_NAME} names (left from another save?); "
                              "re-save the checkpoint")
    return tensors


def parse_shard_size(size) -> int:
    """Bytes for max_shard_size: an int, or a string such as "5GB", "500MB", "2GiB" (transformers' spelling)."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)?\s*", str(size).upper())
        if m is None:
            raise ValueError(f"max_shard_size {size!r} is not a size: give bytes (int) or e.g. '500MB', '5GB'")
        unit = m.group(2) or "B"
        base = 1024 if "I" in unit else 1000
        value = int(float(m.group(1)) * base ** "BKMGT".index(unit[0]))
    if value <= 0:
        raise ValueError(f"max_shard_size must be positive, got {size!r}")
    return value


def _shards(tensors: dict[str, torch.Tensor], limit: int) -> list[dict[str, torch.Tensor]]:
    """Tensors in name order, cut into groups of at most `limit` bytes (a larger tensor gets a shard to itself)."""
    shards, current, size = [], {}, 0
    for name in sorted(tensors):
        t = tensors[name]
        n = t.numel() * t.element_size()
        if current and size + n > limit:
            shards.append(current)
            current, size = {}, 0
        current[name] = t
        size += n
    if current or not shards:
        shards.append(current)
    return shards


def write_weights(tensors: dict[str, torch.Tensor], path: Path, max_shard_size=None) -> None:
    """model.safetensors, or shards plus their index when they exceed max_shard_size; the other layout's files
    (left from an earlier save) are removed once the new ones are written."""
    groups = _shards(tensors, parse_shard_size(max_shard_size)) if max_shard_size is not None else [tensors]
    if len(groups) == 1:
        save_weights(groups[0], path / WEIGHTS_NAME)
        keep = {WEIGHTS_NAME}
    else:
        n = len(groups)
        weight_map, digests, total = {}, {}, 0
        for i, group in enumerate(groups, 1):
            name = f"model-{i:05d}-of-{n:05d}.safetensors"
            digests[name] = save_weights(group, path / name)
            weight_map.update({k: name for k in group})
            total += sum(t.numel() * t.element_size() for t in group.values())
        index = {"metadata": {"total_size": total, _SHARD_DIGESTS_KEY: digests},
                 "weight_map": dict(sorted(weight_map.items()))}
        atomic_write_text(path / WEIGHTS_INDEX_NAME, json.dumps(index, indent=2) + "\n")
        keep = set(digests) | {WEIGHTS_INDEX_NAME}
    for f in path.iterdir():
        stale = f.name in (WEIGHTS_NAME, WEIGHTS_INDEX_NAME) or _SHARD_NAME.fullmatch(f.name)
        if stale and f.name not in keep:
            f.unlink()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint directory: model.safetensors or the shards its index names (if a save was cut
    short between writing one layout and removing the other, the newer one is the checkpoint)."""
    single, index = path / WEIGHTS_NAME, path / WEIGHTS_INDEX_NAME
    if not index.is_file() or (single.is_file() and single.stat().st_mtime_ns > index.stat().st_mtime_ns):
        return load_weights(single)
    try:
        data = json.loads(index.read_text())
        weight_map = data["weight_map"]
        digests = (data.get("metadata") or {}).get(_SHARD_DIGESTS_KEY) or {}
        files = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{index} is corrupt ({e}); re-save the checkpoint") from e
    tensors = {}
    for name in files:
        if Path(name).name != name:
            raise CheckpointError(f"{index} names a shard outside its folder ({name!r})")
        shard = load_weights(path / name, expected_digest=digests.get(name))
        misplaced = sorted(k for k in shard if weight_map.get(k) != name)
        if misplaced:
            raise CheckpointError(f"{path / name} holds tensors {WEIGHTS_INDEX_NAME} puts elsewhere ({misplaced[:3]})")
        tensors.update(shard)
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise CheckpointError(f"{index} names tensors its shards do not hold ({missing[:3]})")
    return tensors


def save_student(model, save_directory, tokenizer=None, merged: bool = False, state: dict | None = None,
                 max_shard_size=None) -> Path:
    """`state` replaces model.state_dict() (a sharded model passes its gathered, LoRA-merged tensors)."""
    path = Path(save_directory)
    path.mkdir(parents=True, exist_ok=True)
    # A student whose LoRA folded as it loaded saves the adapters it loaded from (lora.FoldedLora), unless it is
    # exported merged or a sharded model hands its own gathered state.
    folded = getattr(model, "folded_lora", None) if state is None and not merged else None
    state = dict(state) if state is not None else model.state_dict()
    if merged:
        # Tied weights are stored once; loading re-ties them through the architecture.
        if model.config.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        tensors = dict(state)
    else:
        modified = model.config.modified_teacher_params if folded is None else folded.modified_teacher_params
        tensors = {n: t for n, t in state.items() if canonical_name(n) not in model.teacher_param_names}
        tensors.update({n: t for n, t in state.items() if canonical_name(n) in modified})
        if folded is not None:
            tensors.update(folded.tensors)
    config = LawcatConfig.from_dict(model.config.to_dict())
    if folded is not None:
        config.lora, config.modified_teacher_params = folded.lora, list(folded.modified_teacher_params)
    config.merged = merged
    config.teacher_source = portable_source(config.teacher_source)
    config.architectures = ["LawcatForCausalLM"]
    config.auto_map = {"AutoConfig": f"{AUTO_MODULE}.LawcatConfig",
                       "AutoModelForCausalLM": f"{AUTO_MODULE}.LawcatForCausalLM"}
    write_weights(tensors, path, max_shard_size)
    atomic_write_text(path / CONFIG_NAME, config.to_json_string())
    atomic_write_text(path / f"{AUTO_MODULE}.py", AUTO_MODULE_SOURCE)
    atomic_write_text(path / GENERATION_CONFIG_NAME, _generation_config(model, config).to_json_string(use_diff=True))
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


def _generation_config(model, config: LawcatConfig):
    """The model's generation config (linearize copies the teacher's), else one built from the config's ids."""
    from transformers import GenerationConfig

    found = getattr(model, "generation_config", None)
    if found is not None:
        return found
    return GenerationConfig(**{k: getattr(config, k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")
                               if getattr(config, k, None) is not None})


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


def load_student(save_directory, cls, teacher=None, device=None, dtype=None, config: LawcatConfig | None = None,
                 fold_lora: bool | str = "auto"):
    """Rebuild a student of class `cls` (LawcatForCausalLM, whose from_pretrained calls this) from a run directory,
    with `teacher` or the teacher recorded in its config. This module knows files and teachers, not the model's
    code: it builds through `cls` and `cls.from_teacher`.

    `teacher`: a teacher model, or where to load it from (a load_teacher source; a relative path is also looked
    up under $LAWCAT_TEACHER_ROOT); either way its fingerprint must be the recorded one. `dtype`: a torch dtype
    for the whole student, "auto" for the dtype the teacher's weights were saved in, None to keep float32.
    `config` replaces the directory's config.json (transformers' Auto classes pass the one they read).
    `fold_lora`: whether LoRA adapters saved apart are folded into the projections (lora.folds_on_load)."""
    from transformers import AutoTokenizer

    from ..weights import is_shipped, shipped_names_text, shipped_path

    path = Path(save_directory)
    if not path.exists() and is_shipped(save_directory):  # a path on disk wins over a shipped name
        path = shipped_path(str(save_directory))
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; give a lawcat run directory or a shipped student's name "
                              f"({shipped_names_text()})")
    config = config if config is not None else read_config(path)
    tensors = read_weights(path)
    teacher_given = isinstance(teacher, torch.nn.Module)  # folding LoRA would change the caller's teacher
    if config.merged:
        model = cls(config)
        _load_into(model, tensors, strict_all=True)
        saved_dtype = _stored_dtype(tensors)
    else:
        teacher = _teacher_for(config, path, teacher, dtype, device)
        found = teacher_fingerprint(teacher)
        if found != config.teacher_fingerprint:
            where = getattr(teacher, "lawcat_source", None)
            raise TeacherMismatchError(
                "this checkpoint was distilled from a different teacher "
                f"(fingerprint {config.teacher_fingerprint[:12]}, "
                f"given {found[:12]}{f' from {where}' if where else ''}); pass the teacher it was made from "
                f"(recorded as {config.teacher_source})"
            )
        saved_dtype = next(teacher.parameters()).dtype
        model = cls.from_teacher(teacher, config, fingerprint=found)
        _load_into(model, tensors, strict_all=False)
        final_dtype = saved_dtype if dtype in (None, "auto") else dtype
        if model.config.lora and folds_on_load(fold_lora, teacher_given, final_dtype):
            fold_on_load(model, tensors)
            if final_dtype != torch.float32:  # fold_lora=True below float32: the merged projections too
                model.to(final_dtype)
    if (path / "tokenizer_config.json").is_file():
        model.tokenizer = AutoTokenizer.from_pretrained(path)
    if (path / GENERATION_CONFIG_NAME).is_file():
        model.generation_config = _read_generation_config(path)
    dtype = saved_dtype if dtype == "auto" else dtype
    if dtype is not None:
        model.to(dtype)
    if device is not None:
        model.to(device)
    return model.eval()


def _teacher_for(config: LawcatConfig, path: Path, teacher, dtype, device):
    """The teacher model for a (non-merged) checkpoint: `teacher` itself, loaded from where `teacher` says, or
    from the source the config records."""
    from .teacher import TEACHER_ROOT_ENV, cache_root, is_named_source, load_teacher, locate_source

    if isinstance(teacher, torch.nn.Module):
        return teacher
    if teacher is not None:
        model, _ = load_teacher(str(teacher), dtype=dtype, device=device)
        return model
    if not config.teacher_source:
        raise CheckpointError(f"{path} does not record its teacher; pass teacher=<model or path> explicitly")
    src = locate_source(config.teacher_source)
    sha = config.teacher_file_sha256
    converted = cache_root() / "teachers" / sha[:16] if sha else None
    if not is_named_source(src) and not Path(src).exists() and converted is not None \
            and (converted / "lawcat_source.json").is_file():
        # The GGUF is not where it was, but its dequantized copy (keyed by the file's sha256) is in the cache.
        model, _ = load_teacher(str(converted), dtype=dtype, device=device)
        model.lawcat_source, model.lawcat_file_sha256 = config.teacher_source, sha
        return model
    if not is_named_source(src) and not Path(src).exists():
        raise TeacherLoadError(f"{path}'s teacher is not at {src} (recorded as {config.teacher_source!r}): pass where "
                               f"it is now (teacher=..., --teacher), or set ${TEACHER_ROOT_ENV} to the folder holding "
                               "it when it is recorded as a relative path")
    model, _ = load_teacher(src, dtype=dtype, device=device)
    return model


def _stored_dtype(tensors: dict) -> torch.dtype | None:
    """The dtype a merged export's teacher weights were saved in (its embedding matrix's)."""
    t = tensors.get("model.embed_tokens.weight")
    if t is not None:
        return t.dtype
    floats = [t.dtype for t in tensors.values() if t.is_floating_point()]
    return max(set(floats), key=floats.count) if floats else None


def _read_generation_config(path: Path):
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path / GENERATION_CONFIG_NAME} is corrupt ({e}); restore it or delete it") from e


def _load_into(model, tensors: dict, strict_all: bool) -> None:
    if model.config.lora:
        lo = model.config.lora
        add_lora(model, lo["r"], lo["alpha"], lo["dropout"], lo["targets"])
    state = model.state_dict()
    unexpected = sorted(set(tensors) - set(state))
    own = {n for n in state if canonical_name(n) not in model.teacher_param_names}
    if strict_all:
        tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
        missing = sorted(set(state) - set(tensors) - tied)
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
