"""lawcat.analysis.plots on hand-made inputs: every figure is a PNG, whatever the maps' scale."""
import math

import torch

from lawcat.analysis.gate_memory import summarize
from lawcat.analysis.plots import plot_attention_maps, plot_gate_memory, plot_needle_share


def _png(path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


def test_attention_maps_normalized_or_not_labeled_or_not(tmp_path):
    T = 12
    softmax = torch.randn(T, T).masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf")).softmax(-1)
    raw = softmax * 37.0                                           # a student without the normalizer
    tokens = [f"t{i}" for i in range(T - 2)] + ["$x$", "a\nb"]     # math mode and newlines stay plain text
    plot_attention_maps(softmax, raw, tmp_path / "raw.png", title="t", tokens=tokens, student_normalized=False)
    plot_attention_maps(softmax, softmax, tmp_path / "plain.png", title="t")
    assert _png(tmp_path / "raw.png") and _png(tmp_path / "plain.png")


def test_gate_and_needle_share_figures(tmp_path):
    g = torch.full((40, 3, 4), -math.log(2) / 8)
    summary = summarize([g, g / 10], needle=5)
    summary["needle_distance"] = 34
    plot_gate_memory(summary, tmp_path / "gate.png", title="t")
    layers = [{"best_head_share": s} for s in (0.5, 0.01, 0.2)]
    results = {"uniform_share": 0.05, "models": {"a": {"layers": layers}, "b": {"layers": layers[::-1]}}}
    plot_needle_share(results, tmp_path / "share.png", title="t")
    assert _png(tmp_path / "gate.png") and _png(tmp_path / "share.png")
