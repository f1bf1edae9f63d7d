"""lawcat.bench.teacher_decode: the teacher decoding over a static KV cache gives the logits of its ordinary
DynamicCache decode (on CPU no graph is captured; the CUDA path is the same steps replayed)."""
import pytest
import torch

from lawcat.bench.harness import run_bench
from lawcat.bench.tables import markdown_report
from lawcat.bench.teacher_decode import StaticTeacherDecoder
from tests.bench.test_harness import _get, _settings, pair  # noqa: F401 - the module's fixture
from tests.conftest import make_teacher


def _decode_both_ways(teacher, decoder, context: int, n_steps: int, device="cpu"):
    """Prefill `context` random tokens and decode `n_steps` more through `decoder` (a StaticTeacherDecoder) and
    through the teacher's own DynamicCache; assert the logits agree step by step."""
    torch.manual_seed(0)
    vocab = teacher.config.vocab_size
    ids = torch.randint(0, vocab, (2, context), device=device)
    steps = torch.randint(0, vocab, (2, n_steps), device=device)
    with torch.no_grad():
        cache = teacher(input_ids=ids, use_cache=True).past_key_values
        ref = [teacher(input_ids=steps[:, i:i + 1], past_key_values=cache, use_cache=True).logits
               for i in range(n_steps)]
        decoder.prefill(ids)
        got = [decoder.step(steps[:, i:i + 1]).clone() for i in range(n_steps)]
    tol = 1e-4 if device == "cuda" else 1e-5  # the GPU's kernels differ between a prefill and a step
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_static_cache_steps_equal_the_dynamic_cache():
    teacher = make_teacher("llama").eval()
    _decode_both_ways(teacher, StaticTeacherDecoder(teacher, 30, mode="static"), 20, 4)


def test_a_prompt_must_leave_room_and_steps_need_a_prefill():
    teacher = make_teacher("llama").eval()
    decoder = StaticTeacherDecoder(teacher, 8, mode="static")
    with pytest.raises(RuntimeError, match="prefill first"):
        decoder.step(torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="leaves no room"):
        decoder.prefill(torch.zeros(1, 8, dtype=torch.long))


def test_every_teacher_decode_path_is_its_own_series_in_the_bench(pair):  # noqa: F811
    """--teacher-decode dynamic,static,graph,compiled: one series each; on CPU the graph is unsupported (one clear
    reason), the others decode with the cache they name, and the table's speed-up is against the fastest."""
    teacher, student, info = pair
    res = run_bench(teacher, student, _settings(what=("decode",), teacher_decode=("dynamic", "static", "graph",
                                                                                 "compiled"),
                                                decode_contexts=[64]), device="cpu", info=info)
    dynamic, static = _get(res, "decode", "teacher", 64), _get(res, "decode", "teacher-static", 64)
    graph, compiled = _get(res, "decode", "teacher-graph", 64), _get(res, "decode", "teacher-compiled", 64)
    assert dynamic["status"] == static["status"] == compiled["status"] == "ok", (static, compiled)
    assert static["teacher_cache"] == compiled["teacher_cache"] == "static" and "teacher_cache" not in dynamic
    assert graph["status"] == "unsupported" and "CUDA" in graph["reason"]
    assert len(compiled["times_ms"]) == 2 and compiled["state_bytes"] == compiled["state_bytes_after_prefill"] > 0
    fastest = min((dynamic, static, compiled), key=lambda r: r["ms"])
    row = next(line for line in markdown_report(res).split("## Decode")[1].splitlines() if line.startswith("| 64 |"))
    ratio = fastest["ms"] / _get(res, "decode", "student", 64)["ms"]
    assert f"{ratio:.2f}x ({fastest['model']})" in row


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("context", [20, 1024])
def test_graphed_static_decode_equals_the_dynamic_cache_on_cuda(context):
    """The replayed graph writes slot p, advances p on the device and gives the eager DynamicCache logits."""
    teacher = make_teacher("llama", max_position_embeddings=2048).eval().cuda()
    decoder = StaticTeacherDecoder(teacher, context + 7, mode="graph")
    _decode_both_ways(teacher, decoder, context, 6, device="cuda")
    assert decoder.graph is not None and int(decoder.position) == context + 6


class _ReplayedCall:
    """A stand-in CUDA graph for CPU: the capture's warm-up runs for real (as on a GPU), and a replay runs the
    captured function again into the captured output."""

    def __init__(self, fn, out):
        self.fn, self.out = fn, out

    def replay(self):
        self.out.copy_(self.fn())


def _fake_capture(fn, warmup=2, **_):
    for _ in range(warmup):
        fn()
    return _ReplayedCall(fn, fn()), None  # the graph; the caller takes its output


def test_the_capture_warm_up_does_not_shift_the_steps(monkeypatch):
    """The warm-up before a capture runs real forwards, which advance transformers' static-layer counters: the
    steps after it must still write slot p and match the DynamicCache decode."""
    import lawcat.bench.teacher_decode as td

    def capture(fn, warmup=2, **kw):
        graph, _ = _fake_capture(fn, warmup)
        return graph, graph.out

    monkeypatch.setattr(td, "capture", capture)
    teacher = make_teacher("llama").eval()
    decoder = td.StaticTeacherDecoder(teacher, 25, mode="graph")
    _decode_both_ways(teacher, decoder, 20, 4)
    assert decoder.graph is not None


def test_compiled_static_decode_equals_the_dynamic_cache_with_one_graph():
    """mode="compiled" is transformers' documented fast path (StaticCache + torch.compile): it gives the eager
    logits, and one graph serves every step (a recompile per step would make it slower, not faster)."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    teacher = make_teacher("llama").eval()
    _decode_both_ways(teacher, StaticTeacherDecoder(teacher, 30, mode="compiled", compile_kwargs={"backend": backend}),
                      20, 5)
    assert len(graphs) == 1


def test_unknown_decode_mode_is_refused():
    with pytest.raises(ValueError, match="unknown teacher decode mode 'fast'"):
        StaticTeacherDecoder(make_teacher("llama"), 8, mode="fast")
