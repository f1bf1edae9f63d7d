"""Loading lm-eval tasks (lawcat/eval/lm_eval_task_loading.py): a task whose dataset is not in the local HF
datasets cache is reported as unavailable with an offline reason while the others run; a paper task (piqa) runs
offline on local data, through `task_overrides` or from the local HF datasets cache, scored as its own prompt scores
it; `offline_mode` sets HF's offline flags and restores them. No downloads."""
import json
import os
from pathlib import Path

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


# ---- a dataset not in the local cache is unavailable, with the reason --------------------------------------------

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


# ---- a paper task on local data: task_overrides, or the local HF datasets cache ----------------------------------

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


# ---- offline mode ------------------------------------------------------------------------------------------------

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
