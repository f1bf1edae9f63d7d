"""Results file, markdown, charts and merging, on fake timings (no measurement)."""
import json

import pytest

from lawcat.bench.plots import plot_all, series_figure
from lawcat.bench.report import (
    BenchResultsError,
    markdown_report,
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


def _row(md, section, first_cell):
    part = md.split(section, 1)[1]
    return next(line for line in part.splitlines() if line.startswith(f"| {first_cell} |")).split(" | ")


def test_markdown_tables_mark_oom_and_skips():
    md = markdown_report(fake_results())
    header = _row(md, "## Prefill", "tokens")
    assert header[1:4] == ["teacher ms", "student ms", "student speed-up"]
    row = _row(md, "## Prefill", "128K")
    assert row[1:4] == ["3300", "640", "5.16x"]
    row = _row(md, "## Prefill", "256K")
    assert row[1] == "OOM" and row[2] == "1280" and row[3] == ""
    row = _row(md, "## Prefill", "512K")
    assert row[1] == "—" and row[2] == "2560"
    assert "teacher at 512K: skipped (out of memory at 262144 tokens)" in md
    row = _row(md, "## Decode", "128K")
    assert row[1:4] == ["85.6", "45.0", "1.90x"] and row[6] == "4,096.00"   # speed-up; teacher KV cache MiB
    assert _row(md, "## Attention operator", "T")[1:] == ["sdpa-flash", "sdpa-cudnn", "gla |"]
    assert "32 query heads, 8 KV heads, head dim 64" in md and "sdpa-cudnn: gqa=expanded" in md
    assert "785 TFLOP/s" in md and "NVIDIA H100" in md


def _with_floors(res):
    """fake_results plus what a floor needs: the model's shape and backend, each student prefill's FLOPs by term,
    the copy bandwidth and each decode step's bytes."""
    res["model"].update(shape={"layers": 16, "heads": 32, "kv_heads": 8, "head_dim": 64},
                        lawcat={"gla_backend": "fla"})
    rate = res["matmul"]["flops_per_s"]
    for r in res["records"]:
        if r["kind"] == "prefill" and r["model"] == "student" and r["status"] == "ok":
            # matmul work worth 20 ms at the reference rate, and linear attention the floor leaves to the operator
            r["flops_breakdown"] = {"total": int(0.020 * rate) + 10**9, "linear_attention": 10**9}
        if r["kind"] == "decode":
            r["floor_bytes"] = 3 * 10**9  # 1 ms at 3 TB/s
    res["bandwidth"] = {"bytes": 1 << 30, "status": "ok", "ms": 0.7, "times_ms": [0.7], "bytes_per_s": 3e12}
    return res


def test_floors_in_the_tables():
    """Student prefill floor = matmul FLOPs (less the linear attention) at the matmul rate + layers x the gla
    operator at that length; decode x floor = ms over floor_bytes at the copy bandwidth."""
    md = markdown_report(_with_floors(fake_results()))
    header = _row(md, "## Prefill", "tokens")
    assert header[4:6] == ["student floor ms", "student x floor"]
    row = _row(md, "## Prefill", "16K")   # gla at 16K: 0.992 ms; 20 + 16 x 0.992 = 35.9 ms; 80 / 35.9 = 2.23
    assert row[4:6] == ["35.9", "2.23"]
    assert _row(md, "## Prefill", "2K")[4:6] == ["—", "—"]  # no operator timed at 2K
    row = _row(md, "## Decode", "128K")
    assert row[6:8] == ["85.60", "45.00"]  # x floor of teacher and student: their ms over 1 ms
    assert "3,000.0 GB/s" in md


def test_decode_batches_get_a_table_each():
    res = fake_results()
    extra = [{**r, "batch": 16, "ms": r["ms"] * 2, "tokens_per_s": 16 / (r["ms"] * 2e-3)}
             for r in res["records"] if r["kind"] == "decode"]
    extra.append({"kind": "decode", "model": "teacher", "length": 256 * K, "batch": 16, "status": "oom",
                  "ms": None, "times_ms": [], "error": "OutOfMemoryError: CUDA out of memory"})
    res["records"] += extra
    md = markdown_report(res)
    assert "## Decode (batches 1, 16," in md and "### Batch 1" in md and "### Batch 16" in md
    batch16 = md.split("### Batch 16")[1]
    assert _row(batch16, "|", "1K")[1:3] == ["120", "90.0"]
    assert "teacher at 256K, batch 16: oom" in md


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
