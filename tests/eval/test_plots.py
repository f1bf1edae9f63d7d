"""Charts are written, are real PNGs of a sensible size, and show what they should."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from lawcat.eval.accuracy import Cell, DepthTable
from lawcat.eval.plots import plot_accuracy_vs_length, plot_depth_heatmap, plot_heatmap, plot_length_heatmap

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path, min_bytes=8_000, min_width=600):
    """Signature, size and content of a PNG; returns the image as an (H, W, C) float array."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > min_bytes, f"{path} is suspiciously small ({len(data)} bytes)"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[1] >= min_width, img.shape
    rgb = img[..., :3]
    assert rgb.reshape(-1, 3).std(axis=0).max() > 0.05, f"{path} is (almost) a single colour"
    return rgb


def colour_fractions(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red = ((r - g > 0.35) & (r - b > 0.35)).mean()
    green = ((g - r > 0.3) & (g - b > 0.15)).mean()
    return red, green


def test_accuracy_vs_length(tmp_path):
    curves = {
        "teacher": {1024: Cell(100, 10), 2048: Cell(100, 10), 4096: Cell(90, 10), 8192: Cell(0, 10)},
        "LAWCAT": {1024: 100.0, 2048: 95.0, 4096: 60.0, 8192: 30.0, 16384: 10.0, 32768: 0.0},
        "LoLCATs": {1024: 80.0, 2048: None},  # a missing value is skipped, not drawn at 0
    }
    p = plot_accuracy_vs_length(
        curves, tmp_path / "sub" / "acc.png", title="Passkey", markers={"distillation length": 1162, "none": None}
    )
    assert p == tmp_path / "sub" / "acc.png"
    check_png(p)
    assert [x.name for x in (tmp_path / "sub").iterdir()] == ["acc.png"]  # no temp files left


def test_accuracy_vs_length_with_zero_and_single_point(tmp_path):
    # BABILong's 0k bucket cannot sit on a log axis; it must still plot
    check_png(plot_accuracy_vs_length({"m": {0: 50.0, 1000: 40.0, 2000: 30.0}}, tmp_path / "a.png", title="QA2"))
    check_png(plot_accuracy_vs_length({"m": {4096: 50.0}}, tmp_path / "b.png", title="one point"))
    check_png(plot_accuracy_vs_length({"m": {0: 50.0}}, tmp_path / "c.png", title="zero only"))


def test_depth_heatmap_colours(tmp_path):
    lengths, depths = [1024, 2048, 4096], [0.0, 50.0, 100.0]
    good = DepthTable(lengths, depths, ["0%", "50%", "100%"], {(L, d): Cell(100.0, 5) for L in lengths for d in depths})
    bad = DepthTable(lengths, depths, ["0%", "50%", "100%"], {(L, d): Cell(0.0, 5) for L in lengths for d in depths})
    red_g, green_g = colour_fractions(check_png(plot_depth_heatmap(good, tmp_path / "good.png", title="all right")))
    red_b, green_b = colour_fractions(check_png(plot_depth_heatmap(bad, tmp_path / "bad.png", title="all wrong")))
    assert green_g > 0.2 and red_g < 0.01, (green_g, red_g)  # 100 % is green
    assert red_b > 0.2 and green_b < 0.01, (red_b, green_b)  # 0 % is red
    with pytest.raises(ValueError):
        plot_depth_heatmap(DepthTable([], [], [], {}), tmp_path / "empty.png", title="x")


def test_length_heatmap_with_blanks(tmp_path):
    rows = {"teacher": {0: Cell(44, 100), 1000: Cell(52, 100)}, "LAWCAT": {0: Cell(94, 100), 32000: Cell(8, 100)}}
    rgb = check_png(plot_length_heatmap(rows, tmp_path / "h.png", title="BABILong QA2"))
    grey = ((np.abs(rgb - 0.9).max(axis=-1)) < 0.02).mean()  # the blank cells' light grey
    assert grey > 0.05


def test_heatmap_shape_checked(tmp_path):
    with pytest.raises(ValueError, match="2 x 2"):
        plot_heatmap([[1.0, 2.0]], ["a", "b"], ["x", "y"], tmp_path / "x.png", title="t")
