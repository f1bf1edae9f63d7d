"""Results file, charts and merging, on fake timings (no measurement)."""
import json

import pytest

from lawcat.bench.plots import plot_all, series_figure
from lawcat.bench.report import (
    BenchResultsError,
    merge_results,
    read_results,
    validate_results,
    write_json,
    write_report,
)
from tests.bench.fake import K, fake_results


def test_fake_results_are_valid_and_round_trip(tmp_path):
    res = fake_results()
    validate_results(res)
    paths = write_report(res, tmp_path)
    assert read_results(tmp_path) == json.loads(json.dumps(res))
    assert set(paths) == {"json", "markdown", "prefill_latency", "prefill_memory", "decode_latency", "decode_memory",
                          "op_latency"}
    for name, p in paths.items():
        if p.suffix == ".png":
            data = p.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name


@pytest.mark.parametrize("breakage,match", [
    (lambda r: r.update(format="other"), "format"),
    (lambda r: r["records"][0].update(ms=None), "status ok but ms"),
    (lambda r: r["records"][0].update(times_ms=[]), "times_ms"),
    (lambda r: r["records"][0].update(status="fast"), "status is 'fast'"),
    (lambda r: r["records"][0].update(length=0), "length"),
    (lambda r: r["records"][0].update(kind="train"), "kind"),
    (lambda r: next(x for x in r["records"] if x["status"] == "skipped").pop("reason"), "without a reason"),
    (lambda r: next(x for x in r["records"] if x["status"] == "oom").update(ms=5.0), "time is recorded"),
    (lambda r: next(x for x in r["records"] if x["kind"] == "decode").pop("state_bytes"), "state_bytes"),
    (lambda r: r["run"].pop("machine"), "run.machine"),
])
def test_validation_rejects_broken_results(breakage, match):
    res = fake_results()
    breakage(res)
    with pytest.raises(BenchResultsError, match=match):
        validate_results(res)


def test_read_results_errors(tmp_path):
    with pytest.raises(BenchResultsError, match="does not exist"):
        read_results(tmp_path / "nope.json")
    (tmp_path / "bench.json").write_text("{not json")
    with pytest.raises(BenchResultsError, match="not valid JSON"):
        read_results(tmp_path)
    (tmp_path / "bench.json").write_text(json.dumps({**fake_results(), "version": 9}))
    with pytest.raises(BenchResultsError, match="upgrade lawcat"):
        read_results(tmp_path)


def test_a_gzipped_bench_json_reads_like_the_plain_one(tmp_path):
    """Committed results may keep bench.json gzipped; a folder with only bench.json.gz reads it."""
    res = fake_results()
    write_json(res, tmp_path / "bench.json.gz")
    assert read_results(tmp_path) == read_results(tmp_path / "bench.json.gz") == json.loads(json.dumps(res))


def _oom_marks(fig):
    ax = fig.axes[0]
    xs = [x for line in ax.get_lines() if line.get_marker() == "X" and line.get_linestyle() == "None"
          for x in line.get_xdata()]
    texts = [t.get_text() for t in ax.texts]
    return xs, texts


def test_plots_mark_oom_points_and_draw_one_line_per_model():
    res = fake_results()
    fig = series_figure(res, "prefill", lambda r: r["ms"], "ms", "t", logy=True)
    xs, texts = _oom_marks(fig)
    assert xs == [256 * K] and texts.count("OOM") == 1
    lines = {line.get_label(): line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"teacher", "student"}
    assert list(lines["teacher"].get_xdata()) == [k * K for k in (1, 2, 4, 8, 16, 32, 64, 128)]
    assert list(lines["student"].get_xdata())[-1] == 512 * K
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    # no OOM anywhere: no X marks
    for r in res["records"]:
        if r["status"] == "oom":
            r.update(status="skipped", reason="x", error=None)
    assert _oom_marks(series_figure(res, "prefill", lambda r: r["ms"], "ms", "t"))[0] == []


def test_plot_all_skips_memory_chart_without_memory(tmp_path):
    res = fake_results()
    for r in res["records"]:
        r["peak_bytes"] = None
    res["records"] = [r for r in res["records"] if r["kind"] == "prefill"]
    assert set(plot_all(res, tmp_path)) == {"prefill_latency"}


def test_merge_results():
    a, b = fake_results(), fake_results()
    b["records"] = [{**r, "ms": 1.0, "times_ms": [1.0]} for r in b["records"] if r["length"] == 512 * K]
    for r in b["records"]:
        if r["model"] == "teacher":
            r.update(status="ok", tokens_per_s=1.0)
            r.pop("reason")
    b["run"]["date"] = "later"
    m = merge_results([a, b])
    validate_results(m)
    got = {(r["kind"], r["model"], r["length"]): r for r in m["records"]}
    long = got[("prefill", "teacher", 512 * K)]
    assert long["status"] == "ok" and long["run_index"] == 1
    assert got[("prefill", "teacher", 1 * K)]["run_index"] == 0
    assert [x["date"] for x in m["run"]["merged_from"]] == [a["run"]["date"], "later"]
    b["model"]["name"] = "other"
    with pytest.raises(BenchResultsError, match="same model"):
        merge_results([a, b])
