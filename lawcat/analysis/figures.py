"""The functions behind `lawcat viz`: load the models, compute, write one PNG (and, for the needle share and the
gates, their numbers as JSON beside it), return the one-line summary the command prints.

    attention_figure     teacher vs student attention at one layer and head, for a prompt
    needle_share_figure  the needle's share of each layer's best head's readout, one or more students
    gate_figure          gate half-lives per key dimension, per layer and head, and the needle's retention
    transfer_error_figure  each layer's error against softmax attention by token position, on a task's prompt
    lm_drift_figure      next-token loss and KL to the teacher on plain text by position, with and without LoRA
"""
from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..data import load_corpus, load_texts
from ..data.haystack import CORPUS_NAMES
from ..models import LawcatForCausalLM, TeacherLoadError, load_teacher
from ..models.checkpoint import read_config, resolve_model_spec
from ..models.lora import set_lora_enabled
from ..models.teacher import locate_source
from .attention_maps import layer_input, row_distance, student_attention_weights, teacher_attention_weights
from .errors import AnalysisError
from .gate_memory import capture_gates, summarize
from .lm_drift import drift_by_position, log_probs, text_ids
from .needle_share import share_by_layer
from .plots import plot_attention_maps, plot_gate_memory, plot_lm_drift, plot_needle_share, plot_transfer_error
from .prompts import needle_prompt, task_prompt_ids
from .transfer_error import error_by_position, growth

# The maps are T x T and formed exactly (float64, pairwise decays): beyond this a figure is unreadable anyway.
MAX_ATTENTION_TOKENS = 4096


def attention_figure(model: str, prompt: str, layer: int, head: int, out, teacher: str | None = None) -> str:
    """The teacher's softmax weights and the student's implied LAWCAT weights at `layer`, `head` for `prompt`,
    side by side in `out` (PNG). `model`: a student's run directory or a shipped student's name; `teacher`: where
    its teacher is, if not where the checkpoint records it."""
    run = student_dir(model)
    config = read_config(run)
    check_index("--layer", layer, config.num_hidden_layers, "layers")
    check_index("--head", head, config.attn_heads, "heads")
    teacher_model, tokenizer = _teacher_of(model, config, teacher)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    T = ids.shape[1]
    if T == 0:
        raise AnalysisError("the prompt has no tokens")
    if T > MAX_ATTENTION_TOKENS:
        raise AnalysisError(f"the prompt has {T:,} tokens; attention maps are T x T and computed exactly, so give at "
                            f"most {MAX_ATTENTION_TOKENS:,}")
    teacher_map = teacher_attention_weights(teacher_model, ids, layer, [head])[0]
    student = LawcatForCausalLM.from_pretrained(str(run), teacher=teacher_model).eval()
    x, position_embeddings = layer_input(student, ids, layer)
    student_map = student_attention_weights(student.model.layers[layer].self_attn, x, position_embeddings, [head])[0]
    tokens = [tokenizer.decode([i]) for i in ids[0].tolist()]
    plot_attention_maps(teacher_map, student_map, out, tokens=tokens, student_normalized=config.normalize,
                        title=f"{model}: layer {layer}, head {head}, {T} tokens")
    distance = row_distance(teacher_map, student_map)
    return (f"{model} layer {layer} head {head}, {T} tokens: teacher vs student attention differ by {distance:.3f} "
            f"(mean total variation per row; 0 same, 1 disjoint) -> {out}")


def needle_share_figure(models: list[str], out, names: list[str] | None = None, length: int = 8192,
                        depth: float = 10.0, seed: int = 0) -> str:
    """Each student's needle share at the last token of one passkey prompt (the first student's tokenizer makes
    it), per layer: `out` (PNG) and its numbers as JSON beside it."""
    names = names or [Path(m).name for m in models]
    if len(names) != len(models):
        raise AnalysisError(f"--names gives {len(names)} labels for {len(models)} models; give one per model")
    runs = [student_dir(m) for m in models]  # every spec checked before any model loads
    results, prompt = None, None
    for model, run, name in zip(models, runs, names):
        # A fresh teacher per student: a student's LoRA wraps its teacher's projections in place.
        student = LawcatForCausalLM.from_pretrained(str(run)).eval()
        if prompt is None:
            prompt = needle_prompt(_tokenizer(student, model), length, depth, seed)
            T = prompt.ids.shape[1]
            results = {"length": T, "needle_tokens": [prompt.needle.start, prompt.needle.stop], "query": T - 1,
                       "uniform_share": len(prompt.needle) / T, "depth": depth, "seed": seed, "models": {}}
        layers = share_by_layer(student, prompt.ids, prompt.needle)
        best = max(range(len(layers)), key=lambda i: layers[i]["best_head_share"])
        results["models"][name] = {"model": model, "layers": layers,
                                   "best_share_any_layer": layers[best]["best_head_share"], "best_layer": best}
    out = Path(out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(results, indent=1))
    plot_needle_share(results, out, title=f"needle share of the readout at the answer position, {results['length']} "
                                          f"tokens, needle at {depth:g} % depth")
    each = "; ".join(f"{name} {100 * r['best_share_any_layer']:.2f} % (layer {r['best_layer']})"
                     for name, r in results["models"].items())
    return (f"needle share of the best head at the last of {results['length']} tokens (uniform "
            f"{100 * results['uniform_share']:.3f} %): {each} -> {out}")


def gate_figure(model: str, out, length: int = 8192, depth: float = 10.0, seed: int = 0, chunk: int = 2048) -> str:
    """A student's gates over one passkey prompt: half-lives and the needle's retention, `out` (PNG) and JSON."""
    run = student_dir(model)
    student = LawcatForCausalLM.from_pretrained(str(run)).eval()
    prompt = needle_prompt(_tokenizer(student, model), length, depth, seed)
    T, needle = prompt.ids.shape[1], prompt.needle.start
    summary = summarize(capture_gates(student, prompt.ids, chunk), needle)
    summary.update(model=model, length=T, needle_token=needle, needle_distance=T - 1 - needle, depth=depth, seed=seed)
    out = Path(out)
    plot_gate_memory(summary, out, title=f"{model}: gates on a {T}-token passkey prompt")
    summary.pop("half_lives")
    atomic_write_text(out.with_suffix(".json"), json.dumps(summary, indent=1))
    outlast = [100 * layer["share_of_dims_with_half_life_over_needle_distance"] for layer in summary["layers"]]
    return (f"{model}: median half-life {summary['half_life_quantiles']['0.5']:.1f} tokens over {summary['dims']:,} "
            f"key dims ({len(summary['layers'])} layers); {min(outlast):.1f}-{max(outlast):.1f} % of a layer's dims "
            f"outlast the needle's {summary['needle_distance']:,} tokens -> {out}")


def transfer_error_figure(model: str, out, task: str = "niah2", length: int = 4096, bin_tokens: int = 512,
                          seed: int = 0, trained_tokens: int | None = None) -> str:
    """A student's transfer error by token position on one `task` prompt of `length` tokens: PNG and JSON."""
    run = student_dir(model)
    student = LawcatForCausalLM.from_pretrained(str(run)).eval()
    ids = task_prompt_ids(_tokenizer(student, model), task, length, seed)
    summary = error_by_position(student, ids, bin_tokens)
    summary.update(model=model, task=task, length=length, seed=seed, trained_tokens=trained_tokens)
    mean = [sum(col) / len(col) for col in zip(*summary["layers"])]
    summary["mean_over_layers"] = mean
    out = Path(out)
    plot_transfer_error(summary, out, title=f"{model}: {task}, {summary['tokens']} tokens",
                        trained_tokens=trained_tokens)
    line = (f"{model}: mean transfer error {mean[0]:.3g} in the first {bin_tokens} tokens, {mean[-1]:.3g} in the "
            f"last; highest {max(mean):.3g} at token {summary['bins'][mean.index(max(mean))]:,}")
    if trained_tokens:
        summary["growth_beyond_trained"] = growth(summary, trained_tokens)
        finite = [g for g in summary["growth_beyond_trained"] if g == g]
        if finite:
            line += (f"; beyond token {trained_tokens:,} a layer's error is {min(finite):.2f}-{max(finite):.2f}x "
                     "its error before")
    atomic_write_text(out.with_suffix(".json"), json.dumps(summary, indent=1))
    return f"{line} -> {out}"


def lm_drift_figure(model: str, out, text: str = "books:test", length: int = 2048, bin_tokens: int = 256,
                    seed: int = 0, teacher: str | None = None) -> str:
    """A student's next-token loss and KL to its teacher on plain text, by position, beside the teacher's loss; for
    a student with LoRA kept apart, also with the adapters off (its stage-1 state). `out` (PNG) and JSON."""
    run = student_dir(model)
    teacher_model, tokenizer = _teacher_of(model, read_config(run), teacher)
    ids = text_ids(tokenizer, plain_texts(text), length, seed)
    teacher_lp = log_probs(teacher_model, ids)
    student = LawcatForCausalLM.from_pretrained(str(run), teacher=teacher_model).eval()
    curves = {"student": drift_by_position(teacher_lp, log_probs(student, ids), ids, bin_tokens)}
    if set_lora_enabled(student, False):
        curves["student, LoRA off (stage 1)"] = drift_by_position(teacher_lp, log_probs(student, ids), ids,
                                                                  bin_tokens)
        set_lora_enabled(student, True)
    summary = {"model": model, "text": text, "tokens": ids.shape[1], "seed": seed, "bin_tokens": bin_tokens,
               "curves": curves}
    out = Path(out)
    plot_lm_drift(summary, out, title=f"{model} on {text}, {ids.shape[1]} tokens")
    atomic_write_text(out.with_suffix(".json"), json.dumps(summary, indent=1))
    first = next(iter(curves.values()))
    parts = [f"{name}: next-token loss {_nan_mean(c['nll_student']):.2f} nats, KL to the teacher "
             f"{_nan_mean(c['kl']):.2f}" for name, c in curves.items()]
    return f"{model} on {ids.shape[1]:,} tokens of {text}: teacher {_nan_mean(first['nll_teacher']):.2f} nats; " \
           f"{'; '.join(parts)} -> {out}"


def _nan_mean(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else float("nan")


def _teacher_of(model: str, config, teacher: str | None):
    """(teacher model, tokenizer) of a student: where its checkpoint records it, or `teacher`.

    The teacher is read before the student is built on it: a student's LoRA wraps its teacher's projections in
    place. Building the student on this very model also checks that it is the student's teacher (fingerprint)."""
    source = teacher or config.teacher_source
    if not source:
        raise AnalysisError(f"{model} does not record its teacher; pass --teacher")
    try:
        return load_teacher(locate_source(source) if teacher is None else teacher)
    except TeacherLoadError as e:
        if teacher is not None:
            raise
        raise AnalysisError(f"{model}'s teacher (recorded as {source!r}) could not be loaded: {e}; pass where it is "
                            "now with --teacher") from e


def student_dir(spec: str) -> Path:
    """The run directory a student spec names (a path or a shipped name); a teacher is refused."""
    run = resolve_model_spec(spec)
    if run is None:
        raise AnalysisError(f"{spec} is a teacher, not a lawcat student: give a student's run directory or a shipped "
                            "student's name")
    return run


def plain_texts(source: str) -> list[str]:
    """Documents to read: a packaged corpus by name (evaluation corpora included: this reads, it does not train) or
    the user's text files and folders (lawcat.data.load_texts; a chat or prompt/completion line reads as its text)."""
    if source.partition(":")[0] in CORPUS_NAMES:
        return list(load_corpus(source).documents)
    return [("\n".join(content for _, content in ex.messages) if hasattr(ex, "messages") else ex.prompt + ex.completion)
            for ex in load_texts(source)]


def check_index(flag: str, value: int, count: int, what: str) -> None:
    if not 0 <= value < count:
        raise AnalysisError(f"{flag} {value} is out of range: the student has {count} {what} (0..{count - 1})")


def _tokenizer(student, model: str):
    if student.tokenizer is None:
        raise AnalysisError(f"{model} has no tokenizer files (and its teacher gave none); save it with its tokenizer")
    return student.tokenizer
