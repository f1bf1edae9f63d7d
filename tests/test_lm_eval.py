"""lm-eval's own command line with lawcat's model (lawcat/lm_eval.py): `register()` makes "lawcat" a model name in
lm-eval's registry, lazily and idempotently, leaving lm-eval's own models known; `python -m lawcat.lm_eval --model
lawcat --model_args pretrained=<run dir>` runs a local task end to end in a fresh process. No downloads."""
import json
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

pytest.importorskip("lm_eval")

from lawcat.eval import lm_eval_adapter as A

# Fixtures are imported by name, so that pytest finds them in this module: ruff takes each for an unused import
# (F401) that the tests' parameters shadow (F811).
# ruff: noqa: F811
from tests.eval.lm_eval_fixtures import _empty_hf_caches, llama, student, tok  # noqa: F401

torch.set_num_threads(1)


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
