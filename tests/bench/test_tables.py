"""bench.md's tables on fake timings (no measurement): OOM and skipped cells, the speed-up, the student's prefill
floor, each decode step's floor, a table per decode batch."""
from lawcat.bench.tables import markdown_report
from tests.bench.fake import K, fake_results


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
