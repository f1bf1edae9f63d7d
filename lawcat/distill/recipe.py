"""Recipes: readable YAML files holding everything a distillation run needs, overridable from the command line.

    name: passkey
    preset: lawcat                # a LawcatConfig preset; `model:` adds field overrides (gate_rank: 16, ...)
    data: {task: passkey, length: 1162, n_train: 10000, n_val: 1000}
    stage1: {epochs: 4, lr: 1.0e-2, schedule: cosine, batch_size: 8}
    stage2: {epochs: 4, lr: 1.0e-4, schedule: cosine, batch_size: 8}

Overrides are `dotted.key=value` strings, values parsed as YAML (`stage1.lr=3e-3`, `model.gate_rank=16`,
`stage2.epochs=0` to skip a stage). Unknown keys are an error, never silently ignored. Every key, with what it does,
is listed in recipes/README.md (a test keeps that list complete).

For larger teachers and one's own data: `data.task=text data.source=PATH` (text files, chat JSONL, a local
`datasets` folder: lawcat.data.text), `stage1.grad_accum=4` (micro-batches per optimizer step), `teacher_dtype`
(auto: bf16 on CUDA) and `stage2.activation_checkpointing=true`.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..errors import LawcatError


class RecipeError(LawcatError, ValueError):
    pass


@dataclass
class DataSpec:
    task: str = "passkey"            # passkey | niah1 | niah2 | niah3 | niah-mix | babilong | babilong-qa2 | ... | text
    length: int = 1162               # prompt budget in the teacher's tokens
    n_train: int = 10000
    n_val: int = 1000
    seed: int = 0
    haystack: str | None = None      # training corpus name for NIAH/BABILong backgrounds (never the eval essays)
    source: str | None = None        # for task=text: a local file or folder (.txt, .jsonl with text, prompt/completion
                                     # or chat messages, a `datasets` folder, parquet/arrow/json) or a packaged corpus
                                     # name ("books"); never a hub name (lawcat.data.text)
    loss: str = "completion"         # where stage 2's cross-entropy is taken: completion (the answer, the completion,
                                     # the assistant turns of a chat; plain text: all of it) | all
    seq_len: int = 1024              # for task=text: packed row length
    bucket: bool = True
    style: str = "standard"          # passkey / S-NIAH training prompts: standard (the published format) | diverse
                                     # (other fillers, needles, questions, keys and values: lawcat.data.passkey_styles,
                                     # lawcat.data.niah_styles)
    key_digits: int = 6              # data.style=diverse: the longest training key (lengths 1..N, never the
                                     # held-out 7 digits); 6 made the shipped student, 12 is the measured fix
    extras: list = field(default_factory=list)  # more training samples of other tasks/lengths, e.g. the paper's
                                     # [{task: niah1, n: 1000, length: 1162}] beside the S-NIAH mix (training only)
    stage1_text: float = 0.0         # share of stage 1's rows that are general text (books:train packed to
                                     # data.length) instead of task samples, as LoLCATs trains stage 1 on general text
    stage2_text: float = 0.0         # share of stage 2's rows that are general text, added to the task samples
                                     # (loss on every token): keeps the student a language model while stage 2
                                     # teaches the task; validation stays on the task


@dataclass
class StageSpec:
    epochs: float = 1.0
    max_steps: int | None = None     # caps the step count (after epochs are converted to steps)
    max_seconds: float | None = None  # wall-clock cap for this stage: it stops (checkpointed) at the first step
                                      # past it, its schedule unfinished; a safety net for time-boxed GPU runs
    lr: float = 1e-3
    schedule: str = "cosine"         # cosine | plateau | constant
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 8              # global batch (split across data-parallel ranks): rows per optimizer step
    grad_accum: int = 1              # micro-batches each rank's share is split into, their gradients summed before
                                     # the step: the same step in less activation memory (batch_size must divide)
    micro_batch_tokens: int = 0      # at most this many tokens (rows x padded length) in a micro-batch: a batch of
                                     # long rows goes in more micro-batches than grad_accum; 0 = no limit
    grad_clip: float | None = 1.0
    eval_every: int = 0              # steps between validations (and plateau checks); 0 = once per epoch
    save_every: int = 200            # steps between resumable checkpoints
    # ReduceLROnPlateau as LoLCATs runs it: checked at every validation, lr x factor after `patience` checks
    # without improvement, never below min_lr. Checked once per epoch over 2 epochs it could never fire.
    plateau_patience: int = 10
    plateau_factor: float = 0.1
    plateau_min_lr: float = 1e-5
    keep_best: bool = True           # end the stage on the weights of its best validation loss (LoLCATs does)

    @property
    def trains(self) -> bool:
        """Whether the stage takes any step (`epochs=0` without max_steps skips it)."""
        return self.epochs > 0 or bool(self.max_steps)


@dataclass
class Stage1Spec(StageSpec):
    mse_weight: float = 1000.0
    layer_group: int = 0             # layers fused into one pass (0 = all: fastest; 1 = one at a time: least memory)
    compile: bool = False            # the fused pass through torch.compile (GPU: fewer kernels; compiles first)
    cuda_graph: bool = False         # the fused step captured in CUDA graphs and replayed (lawcat.distill.stage1_graph)


@dataclass
class Stage2Spec(StageSpec):
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: list = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    # The paper trains "LoRA modules exclusively on q, k, v, o" in stage 2; true also trains the convs, feature maps
    # and gates further (the ablation lawcat's earlier students were made with).
    train_lawcat_params: bool = False
    merge_lora: bool = True            # export with LoRA merged into the projections, or kept separate
    # How the cross-entropy is averaged: over every labelled token of a batch (token), or within each row and then
    # over rows (row), so a row with a few answer tokens weighs as much as a row of text labelled throughout
    # (data.stage2_text mixes both kinds).
    loss_mean: str = "token"
    cuda_graph: bool = False           # the step captured in CUDA graphs and replayed (lawcat.distill.stage2)
    # Each decoder layer through torch.utils.checkpoint: its activations are recomputed in the backward pass instead
    # of kept, for teachers whose stage-2 step does not fit (about a third more compute). Stage 1 has no such
    # switch: it back-propagates each layer group on its own, so recomputing would rebuild the same peak.
    activation_checkpointing: bool = False


@dataclass
class Recipe:
    name: str = "custom"
    preset: str = "lawcat"
    model: dict = field(default_factory=dict)
    data: DataSpec = field(default_factory=DataSpec)
    stage1: Stage1Spec = field(default_factory=Stage1Spec)
    stage2: Stage2Spec = field(default_factory=Stage2Spec)
    seed: int = 0
    precision: str = "auto"          # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    teacher_dtype: str = "float32"   # the frozen teacher's weights: float32 | bfloat16 | auto (bfloat16 where the run
                                     # computes in bf16 on CUDA, else float32); LAWCAT's and LoRA's stay float32
    parallel: str = "ddp"            # under torchrun: ddp (replicated, gradients summed) | fsdp (sharded, FSDP2)
    # Start from a trained student (a run directory or a shipped name) instead of a fresh linearization: its LAWCAT
    # weights and unmerged LoRA adapters, fresh optimizer and schedule (lawcat.distill.warm_start); with
    # stage1.epochs=0, more stage-2 training of a student that exists.
    init: str | None = None
    # With init: copy its LoRA adapters (true) or give stage 2 fresh ones (false), which starts stage 2 again from
    # the student its stage 1 left (stage 2 trains only the adapters): a stage-2 setting compared from the same
    # stage-1 weights without paying for stage 1.
    init_lora: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


_SECTIONS = {"data": DataSpec, "stage1": Stage1Spec, "stage2": Stage2Spec}


def _coerce(value, default, key: str):
    """YAML reads `3e-3` (no dot) as a string; numbers are coerced by the field's default type."""
    if isinstance(default, bool) or default is None or not isinstance(value, str):
        return value
    if isinstance(default, (int, float)):
        try:
            number = float(value)
        except ValueError:
            raise RecipeError(f"recipe key {key} needs a number, got {value!r}") from None
        return int(number) if isinstance(default, int) and number.is_integer() else number
    return value


# Keys people reach for that live elsewhere or do not exist for a reason: the unknown-key error says which.
_HINTS = {
    "stage1.activation_checkpointing": "stage 1 back-propagates each layer group on its own, so checkpointing would "
                                       "rebuild the same peak; lower stage1.layer_group (1 = one layer at a time) "
                                       "to save memory",
    "model.teacher_dtype": "teacher_dtype is a top-level key (model: holds LawcatConfig fields)",
}


def _build(cls, data: dict, where: str):
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        hints = "".join(f" ({_HINTS[where + k]})" for k in unknown if where + k in _HINTS)
        raise RecipeError(f"unknown recipe key(s) {', '.join(where + k for k in unknown)}{hints}; "
                          f"valid keys here: {', '.join(sorted(known))}")
    instance = cls()
    values = {k: _coerce(v, getattr(instance, k), where + k) for k, v in data.items()}
    return cls(**values)


def recipe_from_dict(raw: dict) -> Recipe:
    if not isinstance(raw, dict):
        raise RecipeError("a recipe must be a YAML mapping (key: value lines)")
    raw = copy.deepcopy(raw)
    if isinstance(raw.get("model"), dict) and "teacher_dtype" in raw["model"]:
        raise RecipeError(f"unknown recipe key model.teacher_dtype ({_HINTS['model.teacher_dtype']})")
    parts = {}
    for name, cls in _SECTIONS.items():
        section = raw.pop(name, None) or {}
        if not isinstance(section, dict):
            raise RecipeError(f"recipe section {name!r} must be a mapping")
        parts[name] = _build(cls, section, f"{name}.")
    recipe = _build(Recipe, {**raw, **parts}, "")
    validate(recipe)
    return recipe


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """A recipe from a YAML file, or from a shipped recipe's name (`passkey`, lawcat.recipes.resolve_recipe)."""
    from ..recipes import resolve_recipe

    path = resolve_recipe(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} not found; the shipped recipes are in recipes/*.yaml")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"recipe {path} is not valid YAML: {e}") from e
    return recipe_from_dict(apply_overrides(raw, overrides or []))


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"override {item!r} must look like key=value (e.g. stage1.lr=3e-3)")
        key, value = item.split("=", 1)
        node = raw
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise RecipeError(f"override {item!r}: {p} is not a section")
        node[leaf] = yaml.safe_load(value)
    return raw


TEACHER_DTYPES = ("auto", "float32", "bfloat16")
DIVERSE_TASKS = ("passkey", "niah1", "niah2", "niah3", "niah-mix")  # data.style=diverse: tasks with training pools


def _check_micro_batches(name: str, st: StageSpec) -> None:
    if isinstance(st.grad_accum, bool) or not isinstance(st.grad_accum, int) or st.grad_accum < 1:
        raise RecipeError(f"{name}.grad_accum must be an integer >= 1 (micro-batches per optimizer step), "
                          f"not {st.grad_accum!r}")
    if isinstance(st.micro_batch_tokens, bool) or not isinstance(st.micro_batch_tokens, int) \
            or st.micro_batch_tokens < 0:
        raise RecipeError(f"{name}.micro_batch_tokens must be an integer >= 0 (0 = no limit), "
                          f"not {st.micro_batch_tokens!r}")
    if isinstance(st.batch_size, int) and st.batch_size % st.grad_accum:
        raise RecipeError(f"{name}.grad_accum={st.grad_accum} must divide {name}.batch_size={st.batch_size} "
                          "(the batch is split into that many micro-batches)")


def validate(recipe: Recipe) -> None:
    from ..models.config import PRESETS

    if recipe.preset not in PRESETS:
        raise RecipeError(f"unknown preset {recipe.preset!r}; known presets: {', '.join(PRESETS)}")
    if not isinstance(recipe.init_lora, bool):
        raise RecipeError(f"init_lora must be true or false, got {recipe.init_lora!r}")
    if recipe.init is not None and (not isinstance(recipe.init, str) or not recipe.init.strip()):
        raise RecipeError(f"init must name a student (a run directory or a shipped name), got {recipe.init!r}")
    for name in ("stage1", "stage2"):
        st = getattr(recipe, name)
        if st.schedule not in ("cosine", "plateau", "constant"):
            raise RecipeError(f"{name}.schedule must be cosine, plateau or constant, not {st.schedule!r}")
        if st.epochs < 0 or st.lr <= 0 or st.batch_size < 1:
            raise RecipeError(f"{name}: epochs must be >= 0, lr > 0 and batch_size >= 1")
        if st.save_every < 1:
            raise RecipeError(f"{name}.save_every must be >= 1")
        if st.eval_every < 0:
            raise RecipeError(f"{name}.eval_every must be >= 0 (0 = once per epoch)")
        if st.plateau_patience < 0 or not 0 < st.plateau_factor < 1 or st.plateau_min_lr < 0:
            raise RecipeError(f"{name}: plateau_patience must be >= 0, plateau_factor in (0, 1), plateau_min_lr >= 0")
        _check_micro_batches(name, st)
    if recipe.stage1.layer_group < 0:
        raise RecipeError("stage1.layer_group must be >= 0 (0 = all layers in one pass)")
    if recipe.stage1.cuda_graph and (recipe.stage1.layer_group != 0 or recipe.stage1.compile):
        raise RecipeError("stage1.cuda_graph captures the fused step of all layers: it needs stage1.layer_group=0 "
                          "and stage1.compile=false")
    if recipe.stage2.activation_checkpointing and recipe.stage2.cuda_graph:
        raise RecipeError("stage2.activation_checkpointing and stage2.cuda_graph do not go together: checkpointing "
                          "saves the memory of a large teacher's step, the graph the launches of a small one's "
                          "(and its recompute is not captured); choose one")
    if recipe.precision not in ("auto", "fp32", "bf16"):
        raise RecipeError(f"precision must be auto, fp32 or bf16, not {recipe.precision!r}")
    if recipe.teacher_dtype not in TEACHER_DTYPES:
        raise RecipeError(f"teacher_dtype must be {', '.join(TEACHER_DTYPES)}, not {recipe.teacher_dtype!r}")
    if recipe.teacher_dtype == "bfloat16" and recipe.precision == "fp32":
        raise RecipeError("teacher_dtype=bfloat16 needs bf16 compute (precision=auto on CUDA, or bf16): under "
                          "precision=fp32 the float32 LAWCAT layers would meet bfloat16 activations")
    if recipe.parallel not in ("ddp", "fsdp"):
        raise RecipeError(f"parallel must be ddp or fsdp, not {recipe.parallel!r}")
    if recipe.data.loss not in ("completion", "all"):
        raise RecipeError(f"data.loss must be completion or all, not {recipe.data.loss!r}")
    if recipe.data.style not in ("standard", "diverse"):
        raise RecipeError(f"data.style must be standard or diverse, not {recipe.data.style!r}")
    if recipe.data.style == "diverse" and recipe.data.task not in DIVERSE_TASKS:
        raise RecipeError(f"data.style=diverse exists for data.task {', '.join(DIVERSE_TASKS)} only, not "
                          f"{recipe.data.task!r}")
    if not 1 <= recipe.data.key_digits <= 18:
        raise RecipeError(f"data.key_digits must be 1..18, not {recipe.data.key_digits!r}")
    if recipe.stage2.loss_mean not in ("token", "row"):
        raise RecipeError(f"stage2.loss_mean must be token or row, not {recipe.stage2.loss_mean!r}")
    for stage in ("stage1", "stage2"):
        share = getattr(recipe.data, f"{stage}_text")
        if not 0.0 <= share < 1.0:
            raise RecipeError(f"data.{stage}_text is a share of {stage}'s rows in [0, 1), not {share!r}")
        if share and recipe.data.task == "text":
            raise RecipeError(f"data.{stage}_text mixes general text into a task's rows; with data.task=text every "
                              f"row is text already: drop data.{stage}_text")
    for extra in recipe.data.extras:
        if not isinstance(extra, dict) or set(extra) - {"task", "n", "length"} or not {"task", "n"} <= set(extra):
            raise RecipeError(f"each data.extras entry is a mapping {{task, n[, length]}}, not {extra!r}")
    if recipe.data.task == "text" and not recipe.data.source:
        raise RecipeError("data.task=text needs data.source: a .txt/.jsonl file, a folder, or a corpus name")
