"""LawcatForCausalLM's save_pretrained / from_pretrained: transformers' signatures, checked and mapped onto
lawcat.models.checkpoint (which does the writing and loading).

A mixin, listed before PreTrainedModel in LawcatForCausalLM's bases so that its overrides come first.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError
from .config import LawcatConfig


class PretrainedIO:
    def save_pretrained(self, save_directory, tokenizer=None, merged: bool = False, state=None, *, state_dict=None,
                        max_shard_size=None, safe_serialization: bool = True, is_main_process: bool = True,
                        push_to_hub: bool = False, **kwargs):
        """Write config, generation config, tokenizer, the Auto-class loader and the non-teacher tensors (or
        everything, merged=True), atomically. `state_dict` is transformers' name for `state`; max_shard_size
        (bytes or "500MB") shards the weights; is_main_process=False writes nothing (other ranks under Trainer)."""
        from .checkpoint import save_student

        if kwargs:
            raise TypeError(f"LawcatForCausalLM.save_pretrained() got unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}; it takes tokenizer, merged, state (state_dict), "
                            "max_shard_size, safe_serialization, is_main_process")
        if push_to_hub:
            raise CheckpointError("save_pretrained(push_to_hub=True) is not supported: lawcat writes a local folder "
                                  "only (no network here); save it, then upload the folder yourself "
                                  "(e.g. `hf upload <repo-id> <folder>`)")
        if not safe_serialization:
            raise CheckpointError("lawcat writes safetensors only; safe_serialization=False is not supported")
        if state is not None and state_dict is not None:
            raise TypeError("give state or state_dict, not both")
        if not is_main_process:
            return Path(save_directory)
        return save_student(self, save_directory, tokenizer=tokenizer, merged=merged,
                            state=state if state is not None else state_dict, max_shard_size=max_shard_size)

    # Arguments transformers' Auto classes (or habit) pass that mean nothing for a local lawcat folder.
    _IGNORED_LOAD_KWARGS = frozenset({"cache_dir", "force_download", "local_files_only", "proxies", "revision",
                                      "token", "trust_remote_code", "_from_auto", "_commit_hash", "code_revision",
                                      "adapter_kwargs", "use_safetensors"})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, teacher=None, device=None, dtype=None,
                        torch_dtype=None, device_map=None, config=None, subfolder: str = "",
                        fold_lora: bool | str = "auto", **kwargs):
        """Load a run directory (or a shipped student's name); the teacher is re-loaded from its recorded source
        unless `teacher` (a model, or where to load it from) is passed, and must have the recorded fingerprint. A
        teacher recorded as a relative path is looked up under $LAWCAT_TEACHER_ROOT (lawcat.models.teacher).

        dtype / torch_dtype: a torch dtype or its name for the whole student, or "auto": the dtype the teacher's
        weights were saved in (default: float32). device_map: "cpu", "cuda", "cuda:1", a torch.device, or "auto"
        (the GPU if there is one, else the CPU); the student stays on one device, so a map spreading it over
        several is refused. `device` is lawcat's older name for the same thing.

        fold_lora: LoRA adapters saved apart (stage2.merge_lora=false) are folded into q/k/v/o by default when the
        student loads in float32 with a teacher loaded here: the same model, one matrix product per projection
        instead of three (~30 % of a CPU decode step). False keeps them apart (to train them further), True folds
        them in any dtype (in bf16 the sum is rounded) and into a teacher passed in (which it changes)."""
        from .checkpoint import load_student

        if model_args:
            raise TypeError("LawcatForCausalLM.from_pretrained() takes the folder as its only positional argument")
        unknown = sorted(set(kwargs) - cls._IGNORED_LOAD_KWARGS)
        if unknown:
            raise TypeError(f"LawcatForCausalLM.from_pretrained() got unexpected keyword argument(s) "
                            f"{', '.join(unknown)}; it takes teacher, dtype (torch_dtype), device_map (device), "
                            "config, subfolder, fold_lora")
        if kwargs.get("use_safetensors") is False:
            raise ValueError("lawcat checkpoints are safetensors only; use_safetensors=False cannot be honoured")
        if (kwargs.get("adapter_kwargs") or {}).get("_adapter_model_path"):
            raise ValueError(f"{pretrained_model_name_or_path} holds a PEFT adapter; load the student, then apply "
                             "the adapter with peft")
        if config is not None and not isinstance(config, LawcatConfig):
            raise TypeError(f"config must be a LawcatConfig, got {type(config).__name__}")
        path = pretrained_model_name_or_path
        if subfolder:
            path = Path(path) / subfolder
        return load_student(path, cls, teacher=teacher, dtype=_resolve_dtype(dtype, torch_dtype),
                            device=_resolve_device(device, device_map), config=config, fold_lora=fold_lora)


def _resolve_dtype(dtype, torch_dtype):
    """One torch dtype, "auto" or None from dtype / torch_dtype (transformers' older name)."""
    if dtype is not None and torch_dtype is not None and dtype != torch_dtype:
        raise ValueError(f"dtype={dtype!r} and torch_dtype={torch_dtype!r} disagree; give one")
    value = dtype if dtype is not None else torch_dtype
    if value is None or value == "auto":
        return value
    if isinstance(value, str):
        found = getattr(torch, value.removeprefix("torch."), None)
        if not isinstance(found, torch.dtype):
            raise ValueError(f"dtype {value!r} is not a torch dtype; give e.g. torch.bfloat16, 'float32' or 'auto'")
        value = found
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype or 'auto', got {value!r}")
    return value


def _resolve_device(device, device_map):
    """The one device the student goes to, from lawcat's `device` and transformers' `device_map`."""
    if device_map is None:
        return device
    if isinstance(device_map, dict):
        places = {str(torch.device(v) if not isinstance(v, int) else torch.device("cuda", v))
                  for v in device_map.values()}
        if len(places) != 1:
            raise ValueError(f"device_map spreads the model over {sorted(places)}; lawcat keeps a student on one "
                             "device: give one (e.g. device_map='cuda')")
        device_map = places.pop()
    if device_map == "auto":
        target = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device_map, int):
        target = torch.device("cuda", device_map)
    else:
        try:
            target = torch.device(device_map)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device_map {device_map!r} is not supported: lawcat keeps a student on one device; "
                             "give 'auto', 'cpu', 'cuda', 'cuda:1' or a torch.device") from e
    if device is not None and torch.device(device) != target:
        raise ValueError(f"device={device!r} and device_map={device_map!r} disagree; give one")
    return target
