"""`lawcat eval --task lm-eval` (lawcat/cli.py): exit 1 and one line on stderr when no lm-eval task could run (the
model is never loaded), exit 2 and one line for an unknown task name (nothing written), exit 0 when a local task
runs on a lawcat run directory. No downloads."""
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

pytest.importorskip("lm_eval")

# Fixtures are imported by name, so that pytest finds them in this module: ruff takes each for an unused import
# (F401) that the tests' parameters shadow (F811).
# ruff: noqa: F811
from tests.eval.lm_eval_fixtures import _empty_hf_caches, llama, student, tok  # noqa: F401

torch.set_num_threads(1)


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
