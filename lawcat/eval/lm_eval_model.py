"""The lm-eval model class: `LawcatLM`, lm-eval's `HFLM` over an already-built causal LM, and `resolve_model`,
which turns a model spec ("default", a .gguf file, an HF directory, a lawcat run directory) into a model and
its tokenizer.

`LawcatLM` is registered in lm-eval as "lawcat" when this module is imported. lm-eval's own CLI imports
nothing of lawcat's, so `python -m lawcat.lm_eval` (or the `lawcat-lm-eval` command) is that CLI with the name
registered first: `python -m lawcat.lm_eval --model lawcat --model_args pretrained=runs/pk --tasks ...`.

Where HFLM needed changing:
- `_model_call` passes `use_cache=False`: scoring never reuses a cache, and building one (a DynamicCache
  for HF models, the recurrent LawcatCache for students) on every scoring batch is wasted work.
- `_model_generate` generates left-padded batches row by row, without the padding. HFLM batches prompts
  with left padding and relies on the model masking it; a recurrent model must get that exactly right
  in its state update (and HF models give slightly different logits under padding too). Unpadded rows
  make `generate_until` results independent of the batch size. Set `unpadded_generate=False` to pass
  padded batches to `generate()` as HFLM does.
- `get_model_info` does not ask the Hub for a model SHA (HFLM calls `HfApi().model_info`, a network
  request, with the model object as the repo id).
- The tokenizer is copied before HFLM sets a pad token on it, so the caller's tokenizer is not changed.
lm-eval never touches `past_key_values` itself: the cache object is seen only by the model's own
`generate()`, so a non-`transformers.Cache` cache works as long as `model.generate` does.
"""
from __future__ import annotations

import copy
import logging
import os
from pathlib import Path

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

__all__ = ["LawcatLM", "resolve_model", "spec_name"]


# --------------------------------------------------------------------------------------------------
# model spec -> (model, tokenizer)


def _models_attr(name: str):
    """`lawcat.models.<name>`, imported only when a spec string needs it (lawcat.models is heavy)."""
    from lawcat import models

    return getattr(models, name)


def resolve_model(spec, tokenizer=None, dtype=None):
    """Turn a model spec into (model, tokenizer).

    spec: a PreTrainedModel (with `tokenizer`, or one lawcat's loaders attached, or one in its
    name_or_path directory); a
    lawcat run directory (config.json with model_type "lawcat") or a shipped student's name
    ("passkey-smollm2") -> `LawcatForCausalLM.from_pretrained` and the tokenizer saved beside it; anything else
    ("default", a .gguf file, an HF model directory) -> `lawcat.load_teacher(spec)`. A `tokenizer` given here
    wins over the one found with the model.
    """
    from transformers import AutoTokenizer, PreTrainedModel

    if isinstance(spec, PreTrainedModel):
        if tokenizer is None:  # lawcat's loaders attach one: load_student .tokenizer, load_teacher .lawcat_tokenizer
            tokenizer = getattr(spec, "tokenizer", None) or getattr(spec, "lawcat_tokenizer", None)
        if tokenizer is None:
            src = getattr(spec, "name_or_path", "") or ""
            if not src or not Path(src).is_dir():
                raise ValueError("a model object was given without a tokenizer: pass tokenizer=")
            tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=True)
        return spec, tokenizer
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"model spec must be a PreTrainedModel or a string/path, not {type(spec).__name__}")

    spec = str(spec)
    path = Path(spec).expanduser()
    from lawcat.models.checkpoint import resolve_model_spec

    # A name that is no path, no teacher and no shipped student raises UnknownModelError (a FileNotFoundError).
    run = resolve_model_spec(path)
    if run is not None:
        cls = _models_attr("LawcatForCausalLM")
        # The dtype at load, not a cast after: a float32 load folds LoRA saved apart, and casting the folded sum to
        # bf16 would round away what loading in bf16 keeps (lawcat.models.lora.folds_on_load).
        model = cls.from_pretrained(str(run), dtype=dtype)
        if tokenizer is None:
            tokenizer = getattr(model, "tokenizer", None)  # load_student attaches the run's tokenizer
        if tokenizer is None:
            try:
                tokenizer = AutoTokenizer.from_pretrained(str(run), local_files_only=True)
            except (OSError, ValueError) as e:
                raise ValueError(f"no tokenizer files in run directory {spec}: pass tokenizer= ({e})") from e
        return model, tokenizer

    from lawcat.errors import UnsupportedTeacherError

    try:
        model, tok = _models_attr("load_teacher")(spec)
    except UnsupportedTeacherError:
        if not path.is_dir():
            raise
        # Not a family lawcat can linearize, but still an HF causal LM that can be evaluated (as a baseline).
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True).eval()
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return model, (tokenizer if tokenizer is not None else tok)


def spec_name(spec) -> str:
    """The name a model is reported under: the spec string itself, else the object's name_or_path, else its class."""
    if isinstance(spec, (str, os.PathLike)):
        return str(spec)
    return getattr(spec, "name_or_path", "") or type(spec).__name__


# --------------------------------------------------------------------------------------------------
# the lm-eval model class


def _drop_object_model_warnings(record: logging.LogRecord) -> bool:
    msg = record.getMessage()
    return not ("`pretrained` model kwarg is not of type `str`" in msg
                or "Passed an already-initialized model through `pretrained`" in msg)


@register_model("lawcat")
class LawcatLM(HFLM):
    """lm-eval's HFLM over an already-built causal LM (lawcat student, teacher, or any PreTrainedModel).

    `pretrained` is a model object or a spec string for `resolve_model`. loglikelihood and
    loglikelihood_rolling are HFLM's (one forward over right-padded context+continuation, log-softmax,
    sum over the continuation tokens); generate_until is HFLM's with the changes in the module docstring.
    """

    def __init__(self, pretrained, tokenizer=None, device: str | None = "cpu", batch_size: int | str = 1,
                 max_length: int | None = None, dtype: str | torch.dtype | None = None,
                 unpadded_generate: bool = True, **kwargs):
        if isinstance(tokenizer, str):  # from --model_args: a tokenizer directory
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)
        torch_dtype = None
        if dtype not in (None, "auto"):
            from lm_eval.models.utils_hf import get_dtype

            torch_dtype = get_dtype(dtype)
        model, tokenizer = resolve_model(pretrained, tokenizer, dtype=torch_dtype)
        if device is not None and not getattr(model, "hf_device_map", None) and torch.device(device) != model.device:
            model = model.to(device)
        if torch_dtype is not None:  # a model passed in, or a teacher: cast here
            model = model.to(torch_dtype)
        self.unpadded_generate = bool(unpadded_generate) if not isinstance(unpadded_generate, str) \
            else unpadded_generate.lower() in ("1", "true", "yes")
        self._model_source = spec_name(pretrained)
        if isinstance(batch_size, str) and batch_size.isdigit():
            batch_size = int(batch_size)
        if not max_length:  # a student's config keeps the teacher's context length in teacher_config
            teacher_cfg = getattr(model.config, "teacher_config", None)
            if isinstance(teacher_cfg, dict) and not getattr(model.config, "max_position_embeddings", None):
                max_length = teacher_cfg.get("max_position_embeddings")
        hf_log = logging.getLogger("lm_eval.models.huggingface")
        hf_log.addFilter(_drop_object_model_warnings)  # HFLM warns about passing a model object: that is the point
        try:
            super().__init__(pretrained=model, tokenizer=copy.deepcopy(tokenizer), backend="causal",
                             batch_size=batch_size, max_length=int(max_length) if max_length else None, **kwargs)
        finally:
            hf_log.removeFilter(_drop_object_model_warnings)

    def _model_call(self, inps: torch.Tensor, attn_mask=None, labels=None) -> torch.Tensor:
        if attn_mask is not None or labels is not None:  # seq2seq only; not ours
            return super()._model_call(inps, attn_mask=attn_mask, labels=labels)
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            return self.model(input_ids=inps, use_cache=False).logits

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str], **generation_kwargs):
        attention_mask = generation_kwargs.pop("attention_mask", None)
        if not self.unpadded_generate or attention_mask is None or bool(attention_mask.all()):
            if attention_mask is not None:
                generation_kwargs["attention_mask"] = attention_mask
            return super()._model_generate(context, max_length, stop, **generation_kwargs)

        # Row by row without the padding; then laid out as HFLM expects: [padded context | new tokens | pad].
        padded_len = context.shape[1]
        max_new = max_length - padded_len
        new_tokens = []
        for row, mask in zip(context, attention_mask.bool()):
            ids = row[mask].unsqueeze(0)
            out = super()._model_generate(ids, ids.shape[1] + max_new, stop,
                                          attention_mask=torch.ones_like(ids), **dict(generation_kwargs))
            new_tokens.append(out[0, ids.shape[1]:])
        fill = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        width = max(len(t) for t in new_tokens)
        result = context.new_full((context.shape[0], padded_len + width), fill)
        result[:, :padded_len] = context
        for i, t in enumerate(new_tokens):
            result[i, padded_len:padded_len + len(t)] = t
        return result

    def get_model_info(self) -> dict:
        model = self._model
        return {
            "model_source": self._model_source,
            "model_class": type(model).__name__,
            "model_num_parameters": sum(p.numel() for p in model.parameters()),
            "model_dtype": str(getattr(model, "dtype", "")),
        }
