"""The harness for real on CPU: a tiny random Llama and its student at tiny lengths (no times asserted)."""
import argparse
import json

import pytest
import torch

from lawcat import LawcatConfig, linearize, load_teacher
from lawcat.bench.cli import add_bench_parser, main
from lawcat.bench.flops import prefill_flops
from lawcat.bench.harness import BenchError, BenchSettings, cache_nbytes, load_pair, run_bench
from lawcat.bench.report import read_results, validate_results
from lawcat.bench.tables import markdown_report
from lawcat.bench.timing import is_oom, measure, time_runs
from lawcat.models.architectures import arch_config

LENGTHS = [64, 128]


def _settings(**kw):
    base = dict(what=("prefill", "decode", "op"), lengths=list(LENGTHS), decode_contexts=list(LENGTHS),
                decode_steps=2, decode_warmup=1, op_heads=4, op_kv_heads=2, op_head_dim=16,
                op_methods=["sdpa-math", "gla"], chunk_size=48, warmup=0, repeats=1, matmul_n=64)
    base.update(kw)
    return BenchSettings(**base)


@pytest.fixture(scope="module")
def pair():
    return load_pair(arch="tiny-llama", device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def results(pair):
    teacher, student, info = pair
    return run_bench(teacher, student, _settings(), device="cpu", info=info)


def _record_prefills(monkeypatch, student) -> list:
    """Each call of the student's prefill from now on, as (tokens, keyword arguments)."""
    calls = []
    real = type(student).prefill

    def spy(self, ids, *args, **kw):
        calls.append((ids.shape[1], kw))
        return real(self, ids, *args, **kw)

    monkeypatch.setattr(type(student), "prefill", spy)
    return calls


def _get(results, kind, model, length):
    return next(r for r in results["records"] if (r["kind"], r["model"], r["length"]) == (kind, model, length))


def test_records_exist_for_every_point(results):
    validate_results(results)
    for kind, models in (("prefill", ("teacher", "student")), ("decode", ("teacher", "student")),
                         ("op", ("sdpa-math", "gla"))):
        recs = [r for r in results["records"] if r["kind"] == kind]
        assert sorted((r["model"], r["length"]) for r in recs) == sorted((m, T) for m in models for T in LENGTHS)
        assert all(r["status"] == "ok" and r["ms"] > 0 and len(r["times_ms"]) >= 1 for r in recs), recs
    assert results["matmul"]["status"] == "ok" and results["matmul"]["flops_per_s"] > 0
    assert results["model"]["name"] == "tiny-llama" and results["model"]["shape"]["layers"] == 2
    assert results["run"]["machine"]["torch"] == torch.__version__
    warm = results["run"]["warmup"]
    assert warm["tokens"] == 64 and warm["teacher_s"] > 0 and warm["student_s"] > 0
    json.dumps(results)  # everything serialisable


def test_student_state_is_constant_and_teacher_cache_grows(results):
    s64, s128 = (_get(results, "decode", "student", C)["state_bytes"] for C in LENGTHS)
    assert s64 == s128 > 0
    cfg = arch_config("tiny-llama")
    for C in LENGTHS:
        rec = _get(results, "decode", "teacher", C)
        tokens = C + 1 + 2  # prompt + warm-up step + timed steps
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        assert rec["state_bytes"] == 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * tokens * 4
        assert rec["seq_length_after"] == tokens
        assert len(rec["times_ms"]) == 2 and rec["tokens_per_s"] > 0


def test_decode_floor_bytes_and_the_copy_bandwidth(results, pair):
    """Each decode step's floor_bytes: the model's weights plus the teacher's keys and values of the context or
    the student's state; the run measures the copy bandwidth they are divided by."""
    teacher, student, _ = pair
    cfg = arch_config("tiny-llama")
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    teacher_w = sum(p.numel() * 4 for p in teacher.parameters())
    student_w = sum(p.numel() * 4 for p in student.parameters())
    assert student_w > teacher_w
    for C in LENGTHS:
        kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * C * 4
        assert _get(results, "decode", "teacher", C)["floor_bytes"] == teacher_w + kv
        st = _get(results, "decode", "student", C)
        assert st["floor_bytes"] == student_w + st["state_bytes"]
    bw = results["bandwidth"]
    assert bw["status"] == "ok" and bw["bytes_per_s"] > 0 and bw["bytes"] == 256 << 20


def test_decode_batches_are_series_of_their_own(pair):
    teacher, student, info = pair
    res = run_bench(teacher, student, _settings(what=("decode",), decode_contexts=[64], decode_batches=[1, 3]),
                    device="cpu", info=info)
    validate_results(res)
    got = sorted((r["model"], r["batch"]) for r in res["records"])
    assert got == [("student", 1), ("student", 3), ("teacher", 1), ("teacher", 3)]
    b1, b3 = (next(r for r in res["records"] if r["model"] == "student" and r["batch"] == b) for b in (1, 3))
    assert b3["state_bytes"] == 3 * b1["state_bytes"]
    assert b3["tokens_per_s"] == pytest.approx(3 / (b3["ms"] / 1e3))
    with pytest.raises(BenchError, match="decode_batches"):
        _settings(decode_batches=[0]).validate()


def test_static_decoder_steps_in_the_bench(pair):
    """--decode-graph: the student's steps go through lawcat.models.graph_decode (plain static steps on CPU, where no
    graph is captured); the state stays constant and the cache counts every step."""
    teacher, student, info = pair
    res = run_bench(teacher, student, _settings(what=("decode",), models=("student",), decode_graph=True,
                                                decode_contexts=[64]), device="cpu", info=info)
    rec = _get(res, "decode", "student", 64)
    assert rec["status"] == "ok" and rec["decode_graph"] is False and len(rec["times_ms"]) == 2
    assert rec["seq_length_after"] == 64 + 1 + 2 and rec["state_bytes"] == rec["state_bytes_after_prefill"]


def test_prefill_records_carry_flops_and_utilisation(results, pair):
    _, student, _ = pair
    for name in ("teacher", "student"):
        rec = _get(results, "prefill", name, 128)
        expected = prefill_flops(arch_config("tiny-llama"), 128, name, student.config)
        assert rec["flops"] == expected["total"] and rec["flops_breakdown"] == expected
        assert rec["utilization"] == pytest.approx(rec["flops_per_s"] / results["matmul"]["flops_per_s"])
        assert rec["tokens_per_s"] == pytest.approx(128 / (rec["ms"] / 1e3))
    assert _get(results, "prefill", "student", 128)["chunk_size"] == 48
    assert _get(results, "op", "gla", 64)["backend"] == "reference"


def _oom_above(model, limit):
    """Make model.forward raise a CUDA-style OOM when it is given more than `limit` tokens."""
    original = model.forward

    def forward(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] > limit:
            torch.zeros(1)  # an allocation in flight, as a real OOM would have
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return original(*args, **kwargs)

    model.forward = forward
    return original


def test_teacher_oom_is_recorded_and_longer_lengths_skipped(pair):
    teacher, student, info = pair
    original = _oom_above(teacher, 64)
    try:
        res = run_bench(teacher, student, _settings(what=("prefill", "decode"), lengths=[32, 64, 128, 256],
                                                    decode_contexts=[64, 128, 256]), device="cpu", info=info)
        resumed = run_bench(teacher, student, _settings(what=("prefill",), lengths=[64, 128, 256],
                                                        continue_after_oom=True), device="cpu", info=info)
    finally:
        teacher.forward = original
    validate_results(res)
    status = {(r["kind"], r["model"], r["length"]): r["status"] for r in res["records"]}
    assert [status[("prefill", "teacher", T)] for T in (32, 64, 128, 256)] == ["ok", "ok", "oom", "skipped"]
    assert all(status[("prefill", "student", T)] == "ok" for T in (32, 64, 128, 256))
    assert [status[("decode", "teacher", C)] for C in (64, 128, 256)] == ["ok", "oom", "skipped"]
    oom = _get(res, "prefill", "teacher", 128)
    assert oom["ms"] is None and "OutOfMemoryError" in oom["error"]
    assert "out of memory at 128" in _get(res, "prefill", "teacher", 256)["reason"]
    assert [_get(resumed, "prefill", "teacher", T)["status"] for T in (64, 128, 256)] == ["ok", "oom", "oom"]


def test_time_budget_skips_but_keeps_a_valid_file(pair):
    teacher, student, info = pair
    res = run_bench(teacher, student, _settings(time_budget=0.0), device="cpu", info=info)
    validate_results(res)
    assert res["records"] and all(r["status"] == "skipped" and "time budget" in r["reason"] for r in res["records"])


def test_on_record_sees_every_point(pair):
    teacher, student, info = pair
    seen = []
    run_bench(teacher, student, _settings(what=("prefill",)), device="cpu", info=info,
              on_record=lambda res: seen.append(len(res["records"])))
    assert seen[-1] == 4 and set(range(1, 5)) <= set(seen)


def test_op_only_run_needs_no_model():
    res = run_bench(None, None, _settings(what=("op",), lengths=[32]), device="cpu")
    validate_results(res)
    assert res["model"] is None and {r["model"] for r in res["records"]} == {"sdpa-math", "gla"}
    with pytest.raises(BenchError, match="teacher is needed"):
        run_bench(None, None, _settings(what=("prefill",)), device="cpu")
    with pytest.raises(BenchError, match="unknown measurement"):
        run_bench(None, None, _settings(what=("train",)), device="cpu")


def test_timing_helpers():
    import time

    times = time_runs(lambda: time.sleep(0.02), "cpu", warmup=0, repeats=100, max_seconds=0.03)
    assert 1 <= len(times) <= 3
    assert is_oom(torch.OutOfMemoryError("x")) and is_oom(RuntimeError("CUDA error: out of memory"))
    assert not is_oom(ValueError("out of memory"))

    def boom():
        raise RuntimeError("No available kernel. Aborting execution.")
    assert measure(boom, "cpu").status == "unsupported"
    assert measure(lambda: 1 / 0, "cpu").status == "error"


def test_load_pair_from_hf_dir_and_run_dir(teacher_dir, tmp_path):
    teacher, student, info = load_pair(str(teacher_dir), device="cpu")
    assert info["name"] == "teacher" and info["arch"] is None
    assert student.model.layers[0].mlp is teacher.model.layers[0].mlp  # weights shared, not copied
    t2, _ = load_teacher(str(teacher_dir))
    linearize(t2, LawcatConfig()).save_pretrained(tmp_path / "run")
    teacher, student, info = load_pair(str(tmp_path / "run"), device="cpu")
    assert info["name"] == "run" and "run dir" in info["source"]
    _, cache = student.prefill(torch.randint(0, 97, (1, 20)), chunk_size=8)
    assert cache_nbytes(cache) == cache.nbytes() > 0
    with pytest.raises(BenchError, match="give a model"):
        load_pair(None, None)


def test_load_pair_from_a_shipped_name(tmp_path, monkeypatch):
    import lawcat.weights as weights
    from tests.weights.fake import passkey_teacher_dir, ship_student

    monkeypatch.setattr(weights, "ROOT", tmp_path / "weights")
    ship_student(tmp_path / "weights", "passkey-smollm2", passkey_teacher_dir(tmp_path / "teacher"))
    _, student, info = load_pair("passkey-smollm2", device="cpu")
    assert info["name"] == "passkey-smollm2" and type(student).__name__ == "LawcatForCausalLM"
    with pytest.raises(BenchError, match="shipped students: passkey-smollm2.*named architecture: .*tiny-llama"):
        load_pair("passkey-smolm2", device="cpu")


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "b"
    rc = main(["tiny-llama", "--device", "cpu", "--lengths", "64,128", "--decode-contexts", "64,128",
               "--decode-steps", "2", "--decode-warmup", "1", "--op-shape", "4,2,16", "--op-methods", "sdpa-math,gla",
               "--chunk-size", "64", "--warmup", "0", "--repeats", "1", "--matmul-n", "64", "--out", str(out)])
    assert rc == 0
    res = read_results(out)
    assert {p.name for p in out.iterdir()} >= {"bench.json", "bench.md", "prefill_latency.png", "decode_latency.png",
                                                "decode_memory.png", "op_latency.png"}
    assert res["run"]["settings"]["lengths"] == [64, 128]
    assert "## Prefill" in capsys.readouterr().out
    # re-render from the JSON
    assert main(["--from-json", str(out / "bench.json"), "--out", str(tmp_path / "again"), "--no-plots"]) == 0
    assert (tmp_path / "again" / "bench.md").read_text() == (out / "bench.md").read_text()


def test_cli_errors_and_listing(tmp_path, capsys):
    assert main(["--list-archs"]) == 0
    assert "llama-3.2-1b" in capsys.readouterr().out
    assert main(["--arch", "llama-9", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "unknown architecture" in capsys.readouterr().err
    assert main(["--what", "prefill", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert main(["tiny-llama", "--lengths", "abc", "--out", str(tmp_path)]) == 2
    assert main(["tiny-llama"]) == 2  # no --out
    assert main(["tiny-llama", "--decode-batches", "1,x", "--out", str(tmp_path)]) == 2
    assert "--decode-batches '1,x'" in capsys.readouterr().err
    assert main(["tiny-llama", "--teacher-decode", "fast", "--out", str(tmp_path)]) == 2
    assert "unknown teacher decode mode" in capsys.readouterr().err


def test_add_bench_parser_plugs_into_a_main_parser():
    p = argparse.ArgumentParser(prog="lawcat")
    sub = p.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    args = p.parse_args(["bench", "llama-3.2-1b", "--lengths", "1k..4k", "--out", "x"])
    assert args.command == "bench" and args.model == "llama-3.2-1b" and args.lengths == "1k..4k"
    assert args.prefill_graph is False and p.parse_args(["bench", "x", "--prefill-graph"]).prefill_graph is True
    assert args.func.__name__ == "cmd_bench"


def test_planner_predicts_from_median_runs():
    from lawcat.bench.planner import Planner, power_law

    p = Planner(BenchSettings(time_budget=100.0, repeats=5, max_seconds=20.0, warmup=1, skip_warmup_after_s=2.0))
    series, quadratic = ("prefill", "teacher"), power_law(2.0)
    assert p.skip_reason(series, 1024, quadratic) is None                 # nothing known yet: run it
    p.done(series, 1024, {"status": "ok", "ms": 10_000.0, "times_ms": [10_000.0]})
    assert p.predict(series, 2048, quadratic) == pytest.approx(40.0)      # 4x, one timed run, no warm-up (> 2 s)
    assert p.skip_reason(series, 2048, quadratic) is None
    assert "predicted 160 s" in p.skip_reason(series, 4096, quadratic)
    p.done(("op", "gla"), 1024, {"status": "ok", "ms": 1.0, "times_ms": [1.0]})
    assert p.predict(("op", "gla"), 2048, power_law(1.0)) == pytest.approx(0.002 * 6)  # 5 timed + 1 warm-up
    p.done(series, 8192, {"status": "oom", "ms": None, "times_ms": []})
    assert p.skip_reason(series, 16384, quadratic) == "out of memory at 8192 tokens"


def test_planner_scales_a_teacher_decode_point_by_its_flops():
    """A 1B teacher's decode point of 1.5 s at 1K (mostly its untimed static-cache prefill) is predicted at tens of
    seconds at 32K, where its matmuls grow linearly, not at the 1,500 s a quadratic law gives: it runs."""
    from lawcat.bench.flops import ModelShape, decode_flops, prefill_flops
    from lawcat.bench.planner import Planner, power_law
    from lawcat.models.architectures import arch_config

    shape = ModelShape.from_config(arch_config("llama-3.2-1b"))

    def work(n):
        return prefill_flops(shape, n, "teacher")["total"] + 36 * decode_flops(shape, n, "teacher")["total"]
    p = Planner(BenchSettings(time_budget=171.0))
    series = ("decode", "teacher-compiled", 1)
    p.done(series, 1024, {"status": "ok", "ms": 1.6, "times_ms": [1.6]}, 1.5, repeated=False)
    assert 30 < p.predict(series, 32768, work) < 120                       # 93 s
    assert p.skip_reason(series, 32768, work) is None
    assert p.predict(series, 32768, power_law(2.0)) > 1500
    assert "predicted" in p.skip_reason(series, 1 << 20, work)            # 1M tokens: the quadratic term rules


def test_load_pair_gla_backend_override():
    _, student, _ = load_pair(arch="tiny-llama", device="cpu", gla_backend="reference")
    layers = [m for m in student.modules() if type(m).__name__ == "LawcatAttention"]
    assert layers and all(m.config.gla_backend == "reference" for m in layers)
    with pytest.raises(BenchError, match="unknown GLA backend 'cuda-magic'"):
        load_pair(arch="tiny-llama", device="cpu", gla_backend="cuda-magic")


def test_decode_compile_runs_the_students_step_under_torch_compile(pair, monkeypatch):
    """--decode-compile: the student's step goes through torch.compile (here its eager backend, so the test stays
    fast; the bench's own choice is inductor, reduce-overhead on CUDA), compiled once for every step."""
    teacher, student, info = pair
    real_compile, calls = torch.compile, []

    def compile_eagerly(fn, **kw):
        calls.append(kw)
        return real_compile(fn, **{**kw, "backend": "eager"})

    monkeypatch.setattr(torch, "compile", compile_eagerly)
    res = run_bench(teacher, student, _settings(what=("decode",), models=("student",), decode_contexts=[64],
                                                decode_compile=True), device="cpu", info=info)
    rec = _get(res, "decode", "student", 64)
    assert rec["status"] == "ok" and rec["decode_mode"] == "compiled" and len(rec["times_ms"]) == 2
    assert len(calls) == 1 and calls[0]["fullgraph"] is True
    assert "its step under torch.compile" in markdown_report(res)
    with pytest.raises(BenchError, match="choose one of decode_graph and decode_compile"):
        _settings(decode_graph=True, decode_compile=True).validate()


def test_global_warmup_prefills_the_student_in_two_chunks_too(pair, monkeypatch):
    """The warm-up runs the student's prefill from a state as well (the GLA kernels' second compiled variant), so a
    decode point's prefill beyond one chunk does not compile it in the middle of a run."""
    from lawcat.bench.measure import global_warmup

    teacher, student, info = pair
    calls = _record_prefills(monkeypatch, student)
    # chunks longer than the warm-up's prompt: its ordinary prefill is a single chunk
    out = global_warmup({"teacher": teacher, "student": student}, info, _settings(chunk_size=4096), "cpu")
    assert "student_error" not in out and "teacher_error" not in out
    assert any(T > kw.get("chunk_size", 8192) for T, kw in calls), calls


def test_prefill_graph_points(pair, monkeypatch):
    """--prefill-graph: short prefill points of both models are marked as graphed and time the bucketed path (plain
    padded runs on CPU, where nothing is captured); the student's buckets are let go after the prefill points."""
    teacher, student, info = pair
    calls = _record_prefills(monkeypatch, student)
    res = run_bench(teacher, student, _settings(what=("prefill",), prefill_graph=True, global_warmup=False),
                    device="cpu", info=info)
    validate_results(res)
    for T in LENGTHS:
        for name in ("teacher", "student"):
            rec = _get(res, "prefill", name, T)
            assert rec["status"] == "ok" and rec["prefill_graph"] is True
    assert calls and all(kw.get("graph") for _, kw in calls) and "_graphed_prefill" not in student.__dict__
    plain = run_bench(teacher, student, _settings(what=("prefill",)), device="cpu", info=info)
    assert "prefill_graph" not in _get(plain, "prefill", "student", 64)
    with pytest.raises(BenchError, match="no-teacher-cache"):
        _settings(prefill_graph=True, teacher_cache=False).validate()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_prefill_graph_points_capture_both_models_on_cuda():
    teacher, student, info = load_pair(arch="tiny-llama", device="cuda", dtype=torch.bfloat16, gla_backend="triton")
    res = run_bench(teacher, student, _settings(what=("prefill",), prefill_graph=True, warmup=1, repeats=3),
                    device="cuda", info=info)
    for T in LENGTHS:
        for name in ("teacher", "student"):
            rec = _get(res, "prefill", name, T)
            assert rec["status"] == "ok" and rec["prefill_graph"] is True, rec.get("error")


def test_cli_prefill_graph_reaches_the_points(tmp_path):
    out = tmp_path / "b"
    assert main(["tiny-llama", "--device", "cpu", "--what", "prefill", "--lengths", "64", "--prefill-graph",
                 "--warmup", "0", "--repeats", "1", "--matmul-n", "64", "--no-plots", "--out", str(out)]) == 0
    recs = [r for r in read_results(out)["records"] if r["kind"] == "prefill"]
    assert recs and all(r.get("prefill_graph") is True for r in recs)


def test_compile_blocks_compiles_both_models_and_records_it():
    """--compile-blocks: the norms and MLPs (shared by teacher and student) run under torch.compile (inductor here,
    as on a GPU), the points still run, and the record says how many modules were compiled."""
    teacher, student, info = load_pair(arch="tiny-llama", device="cpu", dtype=torch.float32)
    res = run_bench(teacher, student, _settings(what=("prefill",), lengths=[64], compile_blocks=True), device="cpu",
                    info=info)
    layers = len(student.model.layers)
    assert res["run"]["compiled_blocks"] == {"teacher": 3 * layers + 1, "student": 3 * layers + 1}
    assert all(r["status"] == "ok" for r in res["records"])
