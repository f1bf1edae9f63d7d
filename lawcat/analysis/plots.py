"""The `lawcat viz` figures: attention maps side by side, the needle share per layer, the gates' half-lives.

Built with matplotlib's object API (a Figure on the Agg canvas), so drawing needs no display, never switches the
user's backend and leaves no pyplot figure open; each PNG is written atomically.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..atomic import atomic_write_bytes
from .gate_memory import HALF_LIFE_MARKS

DPI = 120
# Prompts up to this many tokens get their tokens as tick labels on the attention maps.
MAX_LABELED_TOKENS = 48


def save_png(fig: Figure, path: str | os.PathLike) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return atomic_write_bytes(path, buf.getvalue())


def plot_attention_maps(teacher_map: torch.Tensor, student_map: torch.Tensor, path, *, title: str,
                        tokens: list[str] | None = None, student_normalized: bool = True) -> Path:
    """Two [T, T] maps side by side (query rows, key columns), on a log colour scale; above the diagonal (the
    future) is blank. Normalized maps share the scale [floor, 1]; an unnormalized student gets its own."""
    T = teacher_map.shape[-1]
    floor = min(1e-3, 0.1 / T)  # well under a uniform row's 1/T, so diffuse heads still show their structure
    fig = Figure(figsize=(13, 6.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, m, label, normalized in ((axes[0], teacher_map, "teacher (softmax)", True),
                                      (axes[1], student_map, "student (LAWCAT, implied)", student_normalized)):
        m = m.double().clone()
        m[torch.ones(T, T, dtype=torch.bool).triu(1)] = float("nan")
        top = 1.0 if normalized else max(float(m.nan_to_num(0).max()), 1e-30)
        image = ax.imshow(m.clamp(min=floor * top).numpy(), cmap="viridis", interpolation="nearest",
                          norm=LogNorm(vmin=floor * top, vmax=top))
        ax.set_title(label)
        ax.set_xlabel("key position")
        ax.set_ylabel("query position")
        if tokens is not None and T <= MAX_LABELED_TOKENS:
            labels = [_tick_text(t) for t in tokens]
            ax.set_xticks(range(T), labels, rotation=90, fontsize=7)
            ax.set_yticks(range(T), labels, fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04,
                     label="attention weight" if normalized else "unnormalized weight (normalize off)")
    fig.suptitle(title)
    return save_png(fig, path)


def plot_needle_share(results: dict, path, *, title: str) -> Path:
    """Per layer, each model's best head's needle share (bars, log scale) against the uniform share."""
    fig = Figure(figsize=(11, 4))
    ax = fig.add_subplot()
    names = list(results["models"])
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        best = [layer["best_head_share"] for layer in results["models"][name]["layers"]]
        offset = (i - (len(names) - 1) / 2) * width  # each layer's group of bars centred on its tick
        ax.bar([layer_idx + offset for layer_idx in range(len(best))], [100 * b for b in best], width, label=name)
    ax.axhline(100 * results["uniform_share"], color="#444", ls="--", lw=1, label="uniform (needle tokens / T)")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel("needle share of the readout, best head (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return save_png(fig, path)


def plot_gate_memory(summary: dict, path, *, title: str) -> Path:
    """Half-lives of every key dimension (histogram), per layer the share of dimensions that outlast the needle's
    distance, and per layer and head the median half-life."""
    fig = Figure(figsize=(18, 4.6))
    a, b, c = fig.subplots(1, 3)
    hl = torch.tensor(summary["half_lives"]).clamp(min=1).log10()
    a.hist(hl.numpy(), bins=60, color="#4477aa")
    for m in HALF_LIFE_MARKS[1:]:
        a.axvline(math.log10(m), color="#999", lw=0.8, ls="--")
        a.text(math.log10(m), a.get_ylim()[1] * 0.98, f" {m // 1024}K", ha="center", va="top", rotation=90,
               fontsize=8)
    a.set_xlabel("log10 half-life (tokens) of a key dimension")
    a.set_ylabel("key dimensions (all layers and heads)")
    a.set_title("gate memory per key dimension")
    share = [100 * layer["share_of_dims_with_half_life_over_needle_distance"] for layer in summary["layers"]]
    b.bar(range(len(share)), share, color="#cc6677")
    b.set_ylim(0, max(5.0, 1.15 * max(share)))
    b.set_xlabel("layer")
    b.set_ylabel("% of key dims with half-life > distance")
    b.set_title(f"dims that can still hold a needle {summary['needle_distance']} tokens back")
    per_head = torch.tensor([layer["half_life_median_per_head"] for layer in summary["layers"]])
    image = c.imshow(per_head.clamp(min=1).log10().T.numpy(), aspect="auto", cmap="magma", origin="lower",
                     interpolation="nearest")
    c.set_xlabel("layer")
    c.set_ylabel("head")
    c.set_title("median half-life per head")
    fig.colorbar(image, ax=c, label="log10 tokens")
    for ax in (b, c):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    c.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    return save_png(fig, path)


def plot_transfer_error(summary: dict, path, *, title: str, trained_tokens: int | None = None) -> Path:
    """Per layer and bin of token positions, the transfer error (heat map, log colour), and its mean over layers
    (line, log scale), with the training length marked."""
    fig = Figure(figsize=(14, 4.6), layout="constrained")
    a, b = fig.subplots(1, 2)
    errors = torch.tensor(summary["layers"]).clamp(min=1e-12)
    edges = [*summary["bins"], summary["tokens"]]
    mesh = a.pcolormesh(edges, range(errors.shape[0] + 1), errors.numpy(), norm=LogNorm(), cmap="viridis")
    fig.colorbar(mesh, ax=a, label="mean squared error per token")
    a.set_xlabel("token position")
    a.set_ylabel("layer")
    a.set_title("LAWCAT vs softmax output, per layer")
    centres = [(lo + hi) / 2 for lo, hi in zip(edges, edges[1:])]
    b.plot(centres, errors.mean(0).numpy(), marker="o", color="#4477aa")
    b.set_yscale("log")
    b.set_xlabel("token position")
    b.set_ylabel("mean over layers")
    b.set_title("transfer error by position")
    if trained_tokens:
        for ax in (a, b):
            ax.axvline(trained_tokens, color="#cc3311", ls="--", lw=1)
        b.text(trained_tokens, b.get_ylim()[1], " trained length", color="#cc3311", va="top", fontsize=8)
    fig.suptitle(title)
    return save_png(fig, path)


def plot_lm_drift(summary: dict, path, *, title: str) -> Path:
    """Next-token loss by position (the teacher's and each student curve's) and the KL from the teacher's next-token
    distribution to each curve's."""
    fig = Figure(figsize=(14, 4.6), layout="constrained")
    a, b = fig.subplots(1, 2)
    curves = summary["curves"]
    first = next(iter(curves.values()))
    centres = [s + summary["bin_tokens"] / 2 for s in first["bins"]]
    a.plot(centres, first["nll_teacher"], marker="o", color="#444", label="teacher")
    for (name, c), colour in zip(curves.items(), ("#cc3311", "#4477aa", "#228833")):
        a.plot(centres, c["nll_student"], marker="o", color=colour, label=name)
        b.plot(centres, c["kl"], marker="o", color=colour, label=name)
    a.set_xlabel("token position")
    a.set_ylabel("next-token loss on the text (nats)")
    a.set_title("loss on plain text")
    a.legend(fontsize=8)
    b.set_xlabel("token position")
    b.set_ylabel("KL(teacher || student), nats")
    b.set_title("distance from the teacher's predictions")
    b.legend(fontsize=8)
    fig.suptitle(title)
    return save_png(fig, path)


def _tick_text(token: str) -> str:
    """A token as a tick label: whitespace made visible, '$' kept from starting matplotlib's math mode."""
    return token.replace("\n", "\\n").replace(" ", "·").replace("$", r"\$") or "∅"
