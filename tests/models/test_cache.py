"""LawcatCache as a transformers Cache: its layers, fixed buffers updated in place, compiled decoding equal to eager,
beam search / sampling / continuation through it, and one clear error for what a recurrent state cannot serve."""
import pytest
import torch
from torch._dynamo.backends.registry import lookup_backend
from transformers import CompileConfig
from transformers.cache_utils import Cache, LinearAttentionLayer

from lawcat import LawcatCache, LawcatConfig, linearize
from lawcat.errors import LawcatError
from lawcat.models.cache import CACHE_FIELD
from lawcat.models.graph_decode import StaticDecoder, _decode_step
from tests.conftest import make_teacher

# qwen3's tiny random teacher gives varied greedy tokens (others repeat one token, which would hide a wrong step).
PRESETS = [("lawcat", {}), ("lolcats", {"window_size": 4}), ("lawcat-rope", {})]


def _student(preset="lawcat", family="qwen3", device="cpu", **kw):
    student = linearize(make_teacher(family), LawcatConfig.from_preset(preset, chunk_size=8, **kw))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in student.lawcat_parameters():  # off the identity-like init
            p.add_(torch.randn(p.shape, generator=g) * 0.2)
    return student.to(device).eval()


def _padded_batch(device="cpu"):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, 97, (2, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding, as batched generation has
    return ids.masked_fill(mask == 0, 0).to(device), mask.to(device)


def _greedy(student, ids, mask, **kw):
    return student.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0, **kw)


# ---- the cache itself -----------------------------------------------------------------------------------------------

def test_cache_is_a_transformers_cache_of_linear_attention_layers():
    student = _student("lawcat-swa64", window_size=4)  # conv, gate and window: every kind of state
    ids, mask = _padded_batch()
    _, cache = student.prefill(ids, attention_mask=mask)
    assert isinstance(cache, Cache) and isinstance(cache, LawcatCache)
    assert all(isinstance(layer, LinearAttentionLayer) for layer in cache.layers)
    assert cache.is_compileable and all(cache.is_linear) and not cache.is_croppable
    assert cache.get_seq_length() == ids.shape[1]
    cfg = student.config
    # lawcat's tensors sit in transformers' slots: the GLA state with its normalizer column, the conv tails
    layer, feature = cache.layers[0], student.model.layers[0].self_attn.feature_map.feature_dim
    assert layer.recurrent_states[0] is layer["gla"]
    assert layer["gla"].shape == (2, cfg.attn_heads, feature, cfg.attn_head_dim + 1)
    assert layer.conv_states[0] is layer["conv_q"] and layer.conv_states[1] is layer["conv_k"]
    if hasattr(cache, "get_recurrent_state"):  # transformers' accessors (5.2x; not in 5.17)
        assert cache.get_recurrent_state(0) is layer["gla"] and cache.get_conv_state(0, 1) is layer["conv_k"]
    assert set(layer.keys()) == {"conv_q", "conv_k", "gla", "win_k", "win_v", "win_fk", "win_g", "win_valid"}


@pytest.mark.parametrize("preset,kw", PRESETS)
def test_decoding_overwrites_the_same_buffers(preset, kw):
    """The state is allocated by the prefill and only overwritten afterwards: every tensor keeps its address and
    size, which is what a compiled or graphed step needs."""
    student = _student(preset, **kw)
    ids, mask = _padded_batch()
    with torch.no_grad():
        logits, cache = student.prefill(ids, attention_mask=mask)
        tensors = [t for layer in cache.layers for t in layer.state.values()]
        if cache.positions is not None:
            tensors.append(cache.positions)
        where, size = [t.data_ptr() for t in tensors], cache.nbytes()
        before = [layer["gla"].clone() for layer in cache.layers]
        for _ in range(3):
            logits = student(logits.argmax(-1)[:, None], past_key_values=cache, use_cache=True).logits[:, -1]
    assert [t.data_ptr() for t in tensors] == where and cache.nbytes() == size
    assert all(not torch.equal(layer["gla"], b) for layer, b in zip(cache.layers, before))  # it did move on
    assert cache.get_seq_length() == ids.shape[1] + 3


def test_reset_is_a_fresh_cache_and_reorder_keeps_the_buffers():
    student = _student("lawcat-rope")
    ids, mask = _padded_batch()
    with torch.no_grad():
        fresh, _ = student.prefill(ids, attention_mask=mask)
        _, cache = student.prefill(torch.randint(4, 97, (2, 7)))
        where = [t.data_ptr() for layer in cache.layers for t in layer.state.values()]
        cache.reset()
        assert cache.get_seq_length() == 0
        again, cache = student.prefill(ids, attention_mask=mask, cache=cache)
        torch.testing.assert_close(again, fresh, rtol=1e-5, atol=1e-5)
        swapped = {k: v.clone() for k, v in cache.layers[1].items()}
        cache.reorder_cache(torch.tensor([1, 0]))
    assert [t.data_ptr() for layer in cache.layers for t in layer.state.values()] == where
    for name, t in cache.layers[1].items():
        assert torch.equal(t, swapped[name].flip(0))


def test_a_cache_serves_one_batch_and_cannot_be_cropped():
    student = _student()
    with torch.no_grad():
        _, cache = student.prefill(torch.randint(4, 97, (2, 6)))
    one_row = {name: t[:1] for name, t in cache.layers[0].items()}  # copy_ would broadcast it over both rows
    with pytest.raises(LawcatError, match="a cache serves one batch"):
        cache.write(0, one_row)
    with pytest.raises(LawcatError, match="changed the cache's layout"):
        cache.write(0, {"gla": cache.layers[0]["gla"]})
    with pytest.raises(LawcatError, match="cannot be rolled back"):
        cache.crop(-1)
    with pytest.raises(LawcatError, match="cannot be rolled back"):
        cache.activate_past_recording()


# ---- generate() through it ------------------------------------------------------------------------------------------

def _compile_config(backend):
    config = CompileConfig(fullgraph=True, mode=None, backend=backend)
    config._compile_all_devices = True  # transformers compiles on CUDA only unless told (here: the CPU)
    return config


@pytest.mark.parametrize("preset,kw", PRESETS)
def test_compiled_generate_equals_eager(preset, kw):
    """generate() compiles the decode step when the cache is compileable (on CUDA by default; here forced on the
    CPU); fullgraph=True proves the step is one graph, with no break, as a CUDA graph needs. aot_eager traces and
    functionalizes the step as inductor does (the in-place cache writes included) without generating C++."""
    student = _student(preset, **kw)
    ids, mask = _padded_batch()
    compiled = []

    def backend(gm, example_inputs):  # counts the graphs compiled (a recompile every step would show here)
        compiled.append(gm)
        return lookup_backend("aot_eager")(gm, example_inputs)

    torch._dynamo.reset()
    eager = _greedy(student, ids, mask)
    got = _greedy(student, ids, mask, compile_config=_compile_config(backend))
    assert torch.equal(got, eager), (got[:, 11:], eager[:, 11:])
    assert len(eager[0, 11:].unique()) > 2  # the tokens vary, so a wrong step would show
    assert len(compiled) == 1  # one decode-step graph for all 7 steps
    assert torch.equal(_greedy(student, ids, mask, compile_config=_compile_config(backend)), eager)
    assert len(compiled) == 1  # a new generate() call, with a new cache, reuses it
    chunked = _greedy(student, ids, mask, compile_config=_compile_config(backend), prefill_chunk_size=4)
    assert torch.equal(chunked, eager) and len(compiled) == 1  # prefill chunks run eagerly, whatever their length


@pytest.mark.slow  # ~100 s on 2 cores: inductor writes and builds C++ for the step
def test_inductor_compiled_generate_equals_eager():
    student = _student("lawcat")
    ids, mask = _padded_batch()
    torch._dynamo.reset()
    eager = _greedy(student, ids, mask)
    assert torch.equal(_greedy(student, ids, mask, compile_config=_compile_config("inductor")), eager)


@pytest.mark.parametrize("preset,kw", PRESETS)
def test_beam_search_and_sampling_equal_generation_without_a_cache(preset, kw):
    """Beam search reorders the cache every step and sampling draws through it: both give what generate() gives
    with no cache at all (every step recomputing the whole sequence), padded rows included."""
    student = _student(preset, **kw)
    ids, mask = _padded_batch()
    for mode in (dict(num_beams=3, do_sample=False), dict(num_beams=1, do_sample=True, top_k=0, top_p=1.0),
                 dict(num_beams=2, do_sample=True, top_k=0, top_p=1.0, num_return_sequences=2)):
        outs = []
        for use_cache in (True, False):
            torch.manual_seed(3)
            outs.append(student.generate(ids, attention_mask=mask, max_new_tokens=6, pad_token_id=0,
                                         use_cache=use_cache, **mode))
        assert torch.equal(*outs), mode


def test_generation_continues_from_a_returned_cache():
    """The cache generate() returns carries on: 4 tokens, then 4 more from that cache, equal 8 at once."""
    student = _student("lawcat-rope")
    ids, mask = _padded_batch()
    whole = _greedy(student, ids, mask)
    first = student.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False, pad_token_id=0,
                             return_dict_in_generate=True)
    cache = first[CACHE_FIELD]
    assert isinstance(cache, LawcatCache) and cache.get_seq_length() == ids.shape[1] + 3
    more_mask = torch.cat([mask, torch.ones(2, 4, dtype=mask.dtype)], 1)
    rest = student.generate(first.sequences, attention_mask=more_mask, max_new_tokens=4, do_sample=False,
                            pad_token_id=0, **{CACHE_FIELD: cache})
    assert torch.equal(rest, whole)


def test_static_cache_implementation_is_the_recurrent_cache():
    """'static' asks for a fixed-size cache updated in place: what the recurrent cache is, so it is honoured."""
    student = _student()
    ids, mask = _padded_batch()
    out = _greedy(student, ids, mask, cache_implementation="static", return_dict_in_generate=True)
    assert isinstance(out[CACHE_FIELD], LawcatCache)
    assert torch.equal(out.sequences, _greedy(student, ids, mask))


@pytest.mark.parametrize("kw,why", [
    (dict(prompt_lookup_num_tokens=3), "prompt-lookup decoding are not supported: they roll the cache back"),
    (dict(penalty_alpha=0.6, top_k=4), "contrastive search is not supported"),
    (dict(dola_layers="low"), "DoLa decoding is not supported"),
    (dict(cache_implementation="dynamic"), "cache_implementation='dynamic' is not supported"),
    (dict(cache_implementation="offloaded"), "cache_implementation='offloaded' is not supported"),
    (dict(cache_implementation="quantized"), "cache_implementation='quantized' is not supported"),
    (dict(cache_implementation="paged"), "cache_implementation='paged' is not supported"),
    (dict(output_hidden_states=True, return_dict_in_generate=True), "output_hidden_states is not supported"),
    (dict(output_attentions=True, return_dict_in_generate=True), "output_attentions is not supported"),
])
def test_unsupported_generation_is_refused_with_one_clear_line(kw, why):
    student = _student()
    ids, mask = _padded_batch()
    with pytest.raises(ValueError, match=why) as err:
        _greedy(student, ids, mask, **kw)
    what, _, rest = str(err.value).partition(": ")
    why, _, instead = rest.partition("; ")
    assert "\n" not in str(err.value) and what and why and instead  # one line: what, why, what to do instead


def test_assisted_decoding_is_refused_either_way_round():
    """A student cannot verify a draft model's tokens, nor be the draft model of another (both roll a cache back)."""
    student = _student()
    teacher = make_teacher("qwen3", seed=1)
    ids, _ = _padded_batch()
    with pytest.raises(ValueError, match="assisted and prompt-lookup decoding are not supported"):
        student.generate(ids[:1], max_new_tokens=4, do_sample=False, pad_token_id=0, assistant_model=teacher)
    with pytest.raises(ValueError, match="cannot be another model's assistant"):
        teacher.generate(ids[:1], max_new_tokens=4, do_sample=False, pad_token_id=0, assistant_model=student)


def _count_decoder_steps(monkeypatch):
    """Every StaticDecoder step generate() takes, as (captured graph?, rows)."""
    steps, step = [], StaticDecoder.step

    def counted(self, ids, position_ids=None):
        steps.append((self.graph is not None, ids.shape[0]))
        return step(self, ids, position_ids)

    monkeypatch.setattr(StaticDecoder, "step", counted)
    return steps


@pytest.mark.parametrize("preset,kw", PRESETS)
def test_default_compiled_generate_decodes_through_the_static_decoder(preset, kw, monkeypatch):
    """Where generate() compiles without a compile_config (CUDA), each one-token step goes to a StaticDecoder over
    the cache (a captured CUDA graph there; here, on the CPU, the same steps uncaptured) and equals eager decoding;
    the prefill runs as it is."""
    student = _student(preset, **kw)
    ids, mask = _padded_batch()
    eager = _greedy(student, ids, mask)
    steps = _count_decoder_steps(monkeypatch)
    monkeypatch.setattr(type(student), "_valid_auto_compile_criteria", lambda self, *args: True)
    assert torch.equal(_greedy(student, ids, mask), eager)
    assert steps == [(False, 2)] * 7  # every step after the prefill's token
    chunked = _greedy(student, ids, mask, prefill_chunk_size=4)  # prefill chunks go through it too, eagerly
    assert torch.equal(chunked, eager) and len(steps) == 14


def test_graphed_steps_take_only_plain_one_token_steps():
    student = _student("lawcat-rope")
    ids, mask = _padded_batch()
    with torch.no_grad():
        _, cache = student.prefill(ids, attention_mask=mask)
    step = dict(input_ids=ids[:, :1], position_ids=torch.tensor([[11], [7]]), use_cache=True, logits_to_keep=1,
                return_dict=True, **{CACHE_FIELD: cache})
    assert _decode_step(step)[0] is cache
    assert _decode_step({**step, "attention_mask": torch.ones(2, 1)}) is not None
    assert _decode_step({**step, "attention_mask": torch.tensor([[1], [0]])}) is None  # a padded column
    assert _decode_step({**step, "input_ids": ids[:, :2], "position_ids": None}) is None  # a prefill chunk
    assert _decode_step({**step, "labels": ids[:, :1]}) is None
    assert _decode_step({**step, CACHE_FIELD: student.new_cache()}) is None  # nothing prefilled yet


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("preset,backend", [("lawcat", "fla"), ("lawcat", "triton"), ("lawcat-rope", "fla"),
                                            ("lolcats", "fla")])
def test_generate_on_cuda_replays_graphs_by_default_and_equals_eager(preset, backend, monkeypatch):
    window = {"window_size": 4} if preset == "lolcats" else {}
    student = _student(preset, device="cuda", gla_backend=backend, **window)
    ids, mask = _padded_batch("cuda")
    eager = _greedy(student, ids, mask, disable_compile=True)
    steps = _count_decoder_steps(monkeypatch)
    got = _greedy(student, ids, mask)
    assert steps == [(True, 2)] * 7  # every decode step a replay
    assert torch.equal(got, eager), (got[:, 11:], eager[:, 11:])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_compiled_generate_on_cuda_equals_eager():
    """With a compile_config, generate() takes transformers' torch.compile (fla's one-token kernel breaks the step's
    graph, and the steps must still equal eager ones)."""
    student = _student("lawcat", device="cuda")
    ids, mask = _padded_batch("cuda")
    torch._dynamo.reset()
    eager = _greedy(student, ids, mask, disable_compile=True)
    assert torch.equal(_greedy(student, ids, mask, compile_config=CompileConfig()), eager)
