"""lm-eval's model class (lawcat/eval/lm_eval_model.py): `LawcatLM`'s loglikelihood and loglikelihood_rolling
checked against the sum of the model's own log-softmax, its generate_until against a plain greedy loop (stop strings,
padded batches giving what single rows give), the lawcat student through its recurrent cache, `resolve_model` turning
a run directory, an HF directory or a shipped student's name into a model and tokenizer, and the class registered in
lm-eval as "lawcat". No downloads."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance
from transformers import LlamaForCausalLM

from lawcat.eval import lm_eval_adapter as A

# Fixtures are imported by name, so that pytest finds them in this module: ruff takes each for an unused import
# (F401) that the tests' parameters shadow (F811).
# ruff: noqa: F811
from tests.eval.lm_eval_fixtures import (  # noqa: F401
    PAIRS,
    _empty_hf_caches,
    gen_requests,
    ll_requests,
    llama,
    ref_greedy_text,
    ref_loglik,
    student,
    tok,
)

torch.set_num_threads(1)


# ---- loglikelihood ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [1, 3])
def test_loglikelihood_equals_logsoftmax_sum(llama, tok, batch_size):
    lm = A.LawcatLM(llama, tokenizer=tok, batch_size=batch_size)
    got = lm.loglikelihood(ll_requests(PAIRS))
    for (ctx, cont), (ll, greedy) in zip(PAIRS, got):
        ref, ref_greedy = ref_loglik(llama, tok, ctx, cont)
        assert ll == pytest.approx(ref, rel=1e-4, abs=1e-4), (ctx, cont)
        assert greedy == ref_greedy


def test_loglikelihood_flags_greedy_continuation(llama, tok):
    ctx = "Paris is the"
    n_ctx = len(tok.encode(ctx))
    ids = tok.encode(ctx)
    with torch.no_grad():
        for _ in range(3):
            ids.append(int(llama(torch.tensor([ids])).logits[0, -1].argmax()))
        logp = torch.log_softmax(llama(torch.tensor([ids])).logits.double(), -1)[0]
    cont = tok.decode(ids)[len(tok.decode(ids[:n_ctx])):]
    if tok.encode(ctx + cont) != ids:
        pytest.skip("greedy tokens do not re-tokenize to themselves")
    ref = float(sum(logp[i - 1, ids[i]] for i in range(n_ctx, len(ids))))
    lm = A.LawcatLM(llama, tokenizer=tok)
    [(ll, greedy)] = lm.loglikelihood(ll_requests([(ctx, cont)]))
    assert greedy is True
    assert ll == pytest.approx(ref, rel=1e-4, abs=1e-4)
    [(_, greedy_other)] = lm.loglikelihood(ll_requests([(ctx, " capital of France")]))
    assert greedy_other is False


def test_loglikelihood_rolling_equals_logsoftmax_sum(llama, tok):
    text = "The quick brown fox jumps over the lazy dog."
    lm = A.LawcatLM(llama, tokenizer=tok)
    [got] = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    ref, _ = ref_loglik(llama, tok, "", text)  # one window: BOS prefix, then every token scored
    assert got == pytest.approx(ref, rel=1e-4, abs=1e-4)


# ---- generate_until -----------------------------------------------------------------------------------------------

PROMPTS = ["Question: What color is the sky on a clear day?\nAnswer:", "Paris is", "How many legs"]


def test_generate_until_returns_greedy_strings(llama, tok):
    lm = A.LawcatLM(llama, tokenizer=tok)
    out = lm.generate_until(gen_requests(PROMPTS, until=["@@@"], max_gen_toks=10, do_sample=False))
    assert all(isinstance(s, str) for s in out)
    assert out == [ref_greedy_text(llama, tok, p, 10) for p in PROMPTS]


def test_generate_until_stops_at_until(llama, tok):
    lm = A.LawcatLM(llama, tokenizer=tok)
    prompt = PROMPTS[0]
    [raw] = lm.generate_until(gen_requests([prompt], until=["@@@"], max_gen_toks=12))
    assert len(raw) >= 4, raw
    stop = raw[len(raw) // 2: len(raw) // 2 + 2]
    [cut] = lm.generate_until(gen_requests([prompt], until=[stop], max_gen_toks=12))
    assert cut == raw[: raw.index(stop)]
    assert stop not in cut


def test_padded_batch_generates_like_single_rows(llama, tok):
    kw = dict(until=["@@@"], max_gen_toks=6)
    batched = A.LawcatLM(llama, tokenizer=tok, batch_size=3).generate_until(gen_requests(PROMPTS, **kw))
    single = A.LawcatLM(llama, tokenizer=tok, batch_size=1).generate_until(gen_requests(PROMPTS, **kw))
    assert batched == single


# ---- the lawcat student (its LawcatCache is not a transformers Cache) --------------------------------------------

def test_student_scores_and_generates_through_recurrent_cache(student, tok):
    lm = A.LawcatLM(student, tokenizer=tok, batch_size=2)
    for (ctx, cont), (ll, _) in zip(PAIRS, lm.loglikelihood(ll_requests(PAIRS))):
        assert ll == pytest.approx(ref_loglik(student, tok, ctx, cont)[0], rel=1e-4, abs=1e-4)
    out = lm.generate_until(gen_requests(PROMPTS, until=["@@@"], max_gen_toks=8))
    assert out == [ref_greedy_text(student, tok, p, 8) for p in PROMPTS]


# ---- resolve_model: a model spec -> (model, tokenizer) -------------------------------------------------------

def test_run_dir_spec_is_resolved_to_the_student(student, tok, tmp_path):
    run = tmp_path / "run"
    student.save_pretrained(run, tokenizer=tok, merged=True)
    model, tokenizer = A.resolve_model(str(run))
    assert type(model).__name__ == "LawcatForCausalLM"
    ids = torch.tensor([tok.encode("Paris is the capital")])
    with torch.no_grad():
        assert torch.allclose(model(ids, use_cache=False).logits, student(ids, use_cache=False).logits, atol=1e-5)
    assert tokenizer.encode("Paris is") == tok.encode("Paris is")
    out = A.run_lm_eval(str(run), tasks=["lawcat_qa_mc"], out_dir=tmp_path / "out", limit=3)
    assert out["lawcat"]["model"] == str(run) and out["lawcat"]["tasks"]["lawcat_qa_mc"]["status"] == "ok"


def test_hf_dir_spec_is_loaded_as_teacher(llama, tok, tmp_path):
    llama.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    model, tokenizer = A.resolve_model(str(tmp_path / "hf"))
    assert isinstance(model, LlamaForCausalLM)
    ids = torch.tensor([tok.encode("Paris is the capital")])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, llama(ids).logits, atol=1e-5)
    assert tokenizer.encode("Paris is") == tok.encode("Paris is")
    assert A.resolve_model(model)[1] is tokenizer  # the tokenizer load_teacher attached to the model
    with pytest.raises(ValueError, match="tokenizer"):
        A.resolve_model(LlamaForCausalLM(llama.config))


def test_shipped_name_is_resolved_and_unknown_name_lists_them(tmp_path, monkeypatch):
    import lawcat.weights as weights
    from tests.weights.fake import passkey_teacher_dir, ship_student

    monkeypatch.setattr(weights, "ROOT", tmp_path / "weights")
    ship_student(tmp_path / "weights", "passkey-smollm2", passkey_teacher_dir(tmp_path / "teacher"))
    model, tokenizer = A.resolve_model("passkey-smollm2")
    assert type(model).__name__ == "LawcatForCausalLM" and tokenizer is not None
    with pytest.raises(FileNotFoundError, match="shipped students: passkey-smollm2"):
        A.resolve_model("passkey-smolm2")


# ---- registered in lm-eval as "lawcat" (the class decorator) ----------------------------------------------------

def test_registered_in_lm_eval_as_lawcat():
    from lm_eval.api.registry import get_model

    assert get_model("lawcat") is A.LawcatLM


def test_a_run_with_lora_apart_loads_in_the_asked_dtype(teacher_dir, tmp_path):
    """dtype reaches from_pretrained: in bf16 the adapters stay apart (a float32 fold cast to bf16 would round the
    update away), in float32 they fold."""
    from lawcat import load_teacher
    from lawcat.models.lora import add_lora
    from tests.conftest import trained_student

    teacher, _ = load_teacher(str(teacher_dir))
    student = trained_student(teacher)
    add_lora(student, r=4, alpha=8)
    student.save_pretrained(tmp_path / "run")
    bf16, _ = A.resolve_model(str(tmp_path / "run"), dtype=torch.bfloat16)
    fp32, _ = A.resolve_model(str(tmp_path / "run"))
    assert bf16.config.lora is not None and bf16.lm_head.weight.dtype == torch.bfloat16
    assert fp32.config.lora is None
