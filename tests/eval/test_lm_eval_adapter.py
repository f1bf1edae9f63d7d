"""lm-eval's entry point (lawcat/eval/lm_eval_adapter.py): `run_lm_eval` on the shipped local tasks end to end,
its scores recomputed from the model's logits and written to lm_eval.json and lm_eval.md; with no task able to run,
the files are still written and the model is never built or loaded; `offline` as a switch defaulting to the
environment (HF offline mode only when on). No downloads."""
import contextlib
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

pytest.importorskip("lm_eval")

from lawcat.eval import lm_eval_adapter as A

# Fixtures are imported by name, so that pytest finds them in this module: ruff takes each for an unused import
# (F401) that the tests' parameters shadow (F811).
# ruff: noqa: F811
from tests.eval.lm_eval_fixtures import _empty_hf_caches, llama, ref_loglik, tok  # noqa: F401

torch.set_num_threads(1)


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


def test_all_tasks_unavailable_writes_files_without_building_a_model(tmp_path):
    out = A.run_lm_eval(object(), tasks=["arc_challenge"], out_dir=tmp_path)  # the model is never touched
    assert out["lawcat"]["tasks"]["arc_challenge"] == {
        "metric": "acc_norm", "status": "unavailable", "reason": out["lawcat"]["unavailable"]["arc_challenge"]}
    assert out["lawcat"]["average"] is None
    assert "| arc_challenge | acc_norm | unavailable |" in (tmp_path / "lm_eval.md").read_text()


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
