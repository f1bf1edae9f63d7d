"""lm-eval adapter: scores checked against the model's own logits, generation against a plain greedy loop,
the shipped local tasks end to end, and an uncached dataset reported as unavailable. No downloads."""
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lawcat.eval import lm_eval_adapter as A

torch.set_num_threads(1)

def _corpus():
    rows = [json.loads(line) for line in (A.LOCAL_TASKS_DIR / "lawcat_qa.jsonl").read_text().splitlines()]
    return [f"Question: {r['question']}\nAnswer: {r['answer']}. " + " ".join(r["choices"]) for r in rows] + [
        "The quick brown fox jumps over the lazy dog. Paris is the capital of France. To open a jar twist the lid."]


@pytest.fixture(scope="module")
def tok():
    """A 400-token SentencePiece-style BPE trained in memory: every token decodes to readable text, so
    random generations can be matched against stop strings."""
    t = Tokenizer(models.BPE(unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.Metaspace()
    t.decoder = decoders.Metaspace()
    t.train_from_iterator(_corpus(), trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                                                         show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.fixture(scope="module")
def llama(tok):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      tie_word_embeddings=False)  # untied: generations depend on the whole context
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def student(llama):
    lawcat = pytest.importorskip("lawcat")
    return lawcat.linearize(llama, lawcat.LawcatConfig(gate_rank=4)).eval()


@pytest.fixture(autouse=True)
def _empty_hf_caches(tmp_path_factory, monkeypatch):
    """No test may find (or write) a dataset in the user's caches."""
    import datasets
    import huggingface_hub

    root = tmp_path_factory.mktemp("hfcache")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "datasets"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # run_lm_eval's default follows it: nothing is fetched


# ---- independent references --------------------------------------------------------------------------------------

def ref_loglik(model, tok, context, continuation):
    """sum_t log p(cont_t | context, cont_<t) from one forward of the model; empty context -> BOS prefix."""
    ctx = tok.encode(context) if context else [tok.bos_token_id]
    cont = tok.encode(continuation)
    if context:
        assert tok.encode(context + continuation) == ctx + cont, "pick pairs that tokenize at the boundary"
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids, use_cache=False).logits.double(), -1)[0]
    pos = torch.arange(len(ctx) - 1, len(ctx) + len(cont) - 1)
    picked = logp[pos, torch.tensor(cont)]
    greedy = bool((logp[pos].argmax(-1) == torch.tensor(cont)).all())
    return float(picked.sum()), greedy


def ref_greedy_text(model, tok, prompt, n):
    """Greedy decoding by full recomputation (no cache), stopped at EOS."""
    ids = tok.encode(prompt)
    new = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(torch.tensor([ids + new]), use_cache=False).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
    return tok.decode(new, skip_special_tokens=True)


PAIRS = [("Question: What color is the sky", " blue"),
         ("Paris is the", " capital of France"),
         ("The quick brown", " fox jumps over the lazy dog"),
         ("", "How many legs does a dog have?")]


def ll_requests(pairs):
    return [Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)]


def gen_requests(prompts, **kw):
    return [Instance("generate_until", {}, (p, dict(kw)), i) for i, p in enumerate(prompts)]


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


# ---- run_lm_eval --------------------------------------------------------------------------------------------------

def _qa_items(n):
    rows = [json.loads(line) for line in (A.LOCAL_TASKS_DIR / "lawcat_qa.jsonl").read_text().splitlines()]
    return [r for r in rows if r["split"] == "test"][:n]


def test_run_lm_eval_local_tasks_end_to_end(llama, tok, tmp_path):
    n = 5
    out = A.run_lm_eval(llama, tok, tasks=["lawcat_local"],  # the tag of the three shipped tasks
                        out_dir=tmp_path, limit=n, batch_size=2)
    data = json.loads((tmp_path / "lm_eval.json").read_text())
    md = (tmp_path / "lm_eval.md").read_text()
    assert data["lawcat"] == json.loads(json.dumps(out["lawcat"]))
    rows = data["lawcat"]["tasks"]
    assert {t: r["status"] for t, r in rows.items()} == dict.fromkeys(
        ["lawcat_qa_mc", "lawcat_qa_gen", "lawcat_qa_ppl"], "ok")
    assert rows["lawcat_qa_mc"]["metric"] == "acc" and rows["lawcat_qa_gen"]["metric"] == "exact_match"
    assert rows["lawcat_qa_mc"]["n"] == n
    assert "acc,none" in data["results"]["lawcat_qa_mc"]

    # acc and acc_norm recomputed from the model's logits with the task's prompt
    acc, acc_norm = [], []
    for it in _qa_items(n):
        ctx = f"Question: {it['question']}\nAnswer:"
        lls = [ref_loglik(llama, tok, ctx, " " + c)[0] for c in it["choices"]]
        acc.append(max(range(len(lls)), key=lls.__getitem__) == it["label"])
        normed = [ll / len(c) for ll, c in zip(lls, it["choices"])]
        acc_norm.append(max(range(len(normed)), key=normed.__getitem__) == it["label"])
    assert data["results"]["lawcat_qa_mc"]["acc,none"] == pytest.approx(sum(acc) / n)
    assert data["results"]["lawcat_qa_mc"]["acc_norm,none"] == pytest.approx(sum(acc_norm) / n)
    assert rows["lawcat_qa_mc"]["value"] == pytest.approx(sum(acc) / n)
    assert data["lawcat"]["average"] == pytest.approx((sum(acc) / n + rows["lawcat_qa_gen"]["value"]) / 2)

    assert "| lawcat_qa_mc | acc | " + f"{100 * sum(acc) / n:.2f}" in md
    assert "| lawcat_qa_ppl | word_perplexity |" in md
    assert "**average**" in md


def test_uncached_dataset_is_reported_unavailable(llama, tok, tmp_path):
    out = A.run_lm_eval(llama, tok, tasks=["piqa", "lawcat_qa_mc"], out_dir=tmp_path, limit=2)
    rows = out["lawcat"]["tasks"]
    assert rows["piqa"]["status"] == "unavailable" and rows["piqa"]["metric"] == "acc"
    assert "offline" in rows["piqa"]["reason"]
    assert rows["lawcat_qa_mc"]["status"] == "ok"
    assert set(out["lawcat"]["unavailable"]) == {"piqa"}
    assert out["lawcat"]["average_over"] == ["lawcat_qa_mc"]
    md = (tmp_path / "lm_eval.md").read_text()
    assert "| piqa | acc | unavailable |" in md and "`piqa`:" in md
    assert json.loads((tmp_path / "lm_eval.json").read_text())["lawcat"]["unavailable"]["piqa"]


def test_all_tasks_unavailable_writes_files_without_building_a_model(tmp_path):
    out = A.run_lm_eval(object(), tasks=["arc_challenge"], out_dir=tmp_path)  # the model is never touched
    assert out["lawcat"]["tasks"]["arc_challenge"] == {
        "metric": "acc_norm", "status": "unavailable", "reason": out["lawcat"]["unavailable"]["arc_challenge"]}
    assert out["lawcat"]["average"] is None
    assert "| arc_challenge | acc_norm | unavailable |" in (tmp_path / "lm_eval.md").read_text()


PIQA_ROWS = [{"goal": "To open a jar", "sol1": "twist the lid", "sol2": "eat the lid", "label": 0},
             {"goal": "To dry wet hands", "sol1": "use a towel", "sol2": "use a fox", "label": 0},
             {"goal": "To see at night", "sol1": "close the eyes", "sol2": "turn on a lamp", "label": 1}]


def piqa_reference_acc(model, tok):
    """piqa's own prompt (its YAML): "Question: {goal}\nAnswer:" + " " + solution; acc over PIQA_ROWS."""
    def ll(r, sol):
        return ref_loglik(model, tok, f"Question: {r['goal']}\nAnswer:", " " + r[sol])[0]
    return sum((ll(r, "sol2") > ll(r, "sol1")) == r["label"] for r in PIQA_ROWS) / len(PIQA_ROWS)


def write_piqa_jsonl(path):
    path.write_text("".join(json.dumps(r) + "\n" for r in PIQA_ROWS))
    return path


def test_task_overrides_run_a_paper_task_on_local_files(llama, tok, tmp_path):
    data_file = write_piqa_jsonl(tmp_path / "piqa_val.jsonl")
    out = A.run_lm_eval(llama, tok, tasks=["piqa"], out_dir=tmp_path / "out", task_overrides={"piqa": {
        "dataset_path": "json", "dataset_kwargs": {"data_files": {"validation": str(data_file)}},
        "training_split": None}})
    row = out["lawcat"]["tasks"]["piqa"]
    assert row["status"] == "ok" and row["metric"] == "acc" and row["n"] == 3
    assert row["value"] == pytest.approx(piqa_reference_acc(llama, tok))


def test_paper_task_runs_from_the_local_hf_datasets_cache(llama, tok, tmp_path):
    """A dataset already in the HF datasets cache (as `load_dataset("baber/piqa")` leaves it) is used offline."""
    import shutil

    import datasets

    data_file = write_piqa_jsonl(tmp_path / "piqa.jsonl")
    datasets.load_dataset("json", data_files={"validation": str(data_file), "train": str(data_file)},
                          cache_dir=str(tmp_path / "build"))
    [built] = (tmp_path / "build" / "json").glob("*/0.0.0/*/")
    cached = Path(datasets.config.HF_DATASETS_CACHE) / "baber___piqa" / "default" / "0.0.0" / built.name
    shutil.copytree(built, cached)
    for f in cached.glob("json-*.arrow"):
        f.rename(cached / f.name.replace("json-", "piqa-"))

    out = A.run_lm_eval(llama, tok, tasks=["piqa"], out_dir=tmp_path / "out")
    row = out["lawcat"]["tasks"]["piqa"]
    assert row["status"] == "ok" and row["n"] == 3, out["lawcat"]
    assert row["value"] == pytest.approx(piqa_reference_acc(llama, tok))


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


# ---- small pieces -------------------------------------------------------------------------------------------------

def test_registered_in_lm_eval_as_lawcat():
    from lm_eval.api.registry import get_model

    assert get_model("lawcat") is A.LawcatLM


def test_summary_uses_paper_metric_per_task():
    fake = {"results": {t: {"alias": t, "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.75,
                            "acc_norm_stderr,none": 0.1} for t in A.PAPER_TASKS},
            "n-samples": {t: {"original": 10, "effective": 10} for t in A.PAPER_TASKS}}
    s = A.summarize(fake, list(A.PAPER_TASKS), {})
    assert {t: r["metric"] for t, r in s["tasks"].items()} == A.PAPER_METRICS
    assert s["tasks"]["hellaswag"]["value"] == 0.75 and s["tasks"]["piqa"]["value"] == 0.5
    assert s["average"] == pytest.approx((0.5 * 3 + 0.75 * 2) / 5)
    assert "| **average** | | 60.00 | | 5/5 tasks |" in A.format_table(s)


def test_offline_mode_sets_and_restores_flags():
    import datasets
    import huggingface_hub

    before = (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE,
              os.environ.get("HF_DATASETS_OFFLINE"))
    with A.offline_mode():
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True and datasets.config.HF_HUB_OFFLINE is True
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    assert (huggingface_hub.constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE,
            os.environ.get("HF_DATASETS_OFFLINE")) == before


# ---- offline as a switch, no model load when nothing runs --------------------------------------------------------

def test_offline_is_a_switch_defaulting_to_the_environment(llama, tok, tmp_path, monkeypatch):
    from lawcat.eval.lm_eval_task_loading import offline_from_env

    assert offline_from_env() is True  # the autouse fixture's HF_DATASETS_OFFLINE=1
    out = A.run_lm_eval(llama, tok, tasks=["lawcat_qa_mc"], limit=1)
    assert out["lawcat"]["offline"] is True
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert offline_from_env() is False
    seen = []
    monkeypatch.setattr(A, "offline_mode", lambda: seen.append(1) or contextlib.nullcontext())
    out = A.run_lm_eval(llama, tok, tasks=["lawcat_qa_mc"], limit=1, offline=False)
    assert out["lawcat"]["offline"] is False and not seen and A.tasks_ran(out) == ["lawcat_qa_mc"]
    out = A.run_lm_eval(llama, tok, tasks=["lawcat_qa_mc"], limit=1, offline=True)
    assert out["lawcat"]["offline"] is True and seen


def test_model_loader_is_not_called_when_no_task_can_run(tmp_path):
    def loader():
        raise AssertionError("the model was loaded although no task can run")

    out = A.run_lm_eval(loader, tasks=["arc_challenge"], out_dir=tmp_path, offline=True, model_name="m")
    assert A.tasks_ran(out) == [] and out["lawcat"]["model"] == "m"


# ---- `lawcat eval --task lm-eval`: exit status and one line when no task ran -------------------------------------

def test_lawcat_eval_exits_1_with_one_line_when_no_task_ran(tmp_path, capsys):
    from lawcat import cli

    # The model spec names nothing: it is never loaded, since no task can run offline here.
    rc = cli.main(["eval", str(tmp_path / "no-model"), "--task", "lm-eval", "--lm-eval-tasks", "arc_challenge",
                   "--offline", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 1
    assert captured.err.strip().startswith("error: no lm-eval task ran: arc_challenge") and \
        len(captured.err.strip().splitlines()) == 1, captured.err
    assert "| arc_challenge | acc_norm | unavailable |" in captured.out
    assert (tmp_path / "out" / "lm_eval.md").is_file()


def test_lawcat_eval_unknown_task_exits_2_with_one_line(tmp_path, capsys):
    from lawcat import cli

    rc = cli.main(["eval", "default", "--task", "lm-eval", "--lm-eval-tasks", "lawcat_qa_mcq", "--offline",
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: unknown lm-eval task(s): lawcat_qa_mcq") and "\n" not in err, err
    assert "did you mean lawcat_qa_mc" in err
    assert not (tmp_path / "out").exists()  # a typo is caught before anything is written or loaded


def test_lawcat_eval_runs_a_local_task(student, tok, tmp_path, capsys):
    from lawcat import cli

    run = tmp_path / "run"
    student.save_pretrained(run, tokenizer=tok, merged=True)
    assert cli.main(["eval", str(run), "--task", "lm-eval", "--lm-eval-tasks", "lawcat_qa_mc", "--limit", "2",
                     "--device", "cpu", "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "lm_eval.json").read_text())
    assert data["lawcat"]["tasks"]["lawcat_qa_mc"]["status"] == "ok" and data["lawcat"]["offline"] is True


# ---- lm-eval's own CLI knows "lawcat" ------------------------------------------------------------------------------

def test_register_makes_lawcat_a_model_name_lazily():
    """In a fresh process: after register(), lm-eval's registry resolves "lawcat" (importing the class only then)
    and still knows its own models."""
    code = textwrap.dedent("""
        import sys
        import lawcat.lm_eval
        lawcat.lm_eval.register()
        lawcat.lm_eval.register()  # idempotent
        from lm_eval.api.registry import get_model
        assert "lawcat.eval.lm_eval_model" not in sys.modules
        cls = get_model("lawcat")
        from lawcat.eval.lm_eval_model import LawcatLM
        assert cls is LawcatLM, cls
        assert get_model("hf").__name__ == "HFLM"
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_lm_eval_cli_runs_model_lawcat_on_a_run_dir(student, tok, tmp_path):
    """`python -m lawcat.lm_eval --model lawcat --model_args pretrained=<run dir>`: lm-eval's own CLI, end to end."""
    run = tmp_path / "run"
    student.save_pretrained(run, tokenizer=tok, merged=True)
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets")}
    r = subprocess.run([sys.executable, "-m", "lawcat.lm_eval", "--model", "lawcat", "--model_args",
                        f"pretrained={run}", "--tasks", "lawcat_qa_mc", "--include_path", str(A.LOCAL_TASKS_DIR),
                        "--limit", "2", "--device", "cpu", "--output_path", str(tmp_path / "res")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "lawcat_qa_mc" in r.stdout and "acc" in r.stdout
    [res] = (tmp_path / "res").rglob("results_*.json")
    assert "acc,none" in json.loads(res.read_text())["results"]["lawcat_qa_mc"]
