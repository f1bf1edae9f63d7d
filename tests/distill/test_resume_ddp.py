"""Exact resume after SIGKILL, data parallelism on 2 CPU processes, divergence and bad input handling."""
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.distill.conftest import tiny_overrides

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def distill_cmd(teacher, out, text, *extra, launcher=(sys.executable, "-m")):
    return [*launcher, "lawcat.cli", "distill", "--recipe", os.path.join(ROOT, "recipes", "demo.yaml"),
            "--teacher", str(teacher), "--out", str(out), "--device", "cpu", *tiny_overrides(text), *extra]


def run(cmd, env_extra=None, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT, **(env_extra or {})}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stderr[-3000:]}")
    return r


@pytest.fixture
def reference_run(text_setup, tmp_path):
    teacher, text = text_setup
    run(distill_cmd(teacher, tmp_path / "ref", text))
    return teacher, text, load_file(tmp_path / "ref" / "model.safetensors")


@pytest.mark.parametrize("fault", ["stage1:5", "stage2:7"])
def test_sigkill_then_resume_is_bit_exact(reference_run, tmp_path, fault):
    teacher, text, ref = reference_run
    out = tmp_path / "killed"
    r = run(distill_cmd(teacher, out, text), {"LAWCAT_FAULT_AT_STEP": fault}, check=False)
    assert r.returncode == -9, r.stderr[-2000:]
    assert not (out / "model.safetensors").exists() or fault.startswith("stage2")
    run(distill_cmd(teacher, out, text, "--resume"))
    got = load_file(out / "model.safetensors")
    assert set(got) == set(ref)
    for name in ref:
        assert torch.equal(got[name], ref[name]), name


def test_two_process_gloo_equals_single_process(reference_run, tmp_path):
    teacher, text, ref = reference_run
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m"]
    run(distill_cmd(teacher, tmp_path / "ddp", text, launcher=torchrun))
    got = load_file(tmp_path / "ddp" / "model.safetensors")
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-4, atol=1e-5, msg=name)
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert log and all("loss" in x or "val_loss" in x for x in log)


def test_divergence_stops_with_clear_message_and_keeps_checkpoint(text_setup, tmp_path):
    teacher, text = text_setup
    out = tmp_path / "nan"
    r = run(distill_cmd(teacher, out, text, "stage1.lr=1e30", "stage1.grad_clip=null"), check=False)
    assert r.returncode == 2
    assert "the loss became" in r.stderr and "--resume" in r.stderr
    assert not (out / "model.safetensors").exists()


def test_existing_run_refused_and_bad_data_path(text_setup, tmp_path):
    teacher, text = text_setup
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    r = run(distill_cmd(teacher, out, text), check=False)
    assert r.returncode == 2 and "already holds a run" in r.stderr
    assert (out / "keep.txt").read_text() == "precious"
    r = run(distill_cmd(teacher, tmp_path / "x", tmp_path / "missing.txt"), check=False)
    assert r.returncode == 2 and "missing.txt" in r.stderr and "Traceback" not in r.stderr


def test_fsdp_two_processes_equal_single_process_and_resume(reference_run, tmp_path):
    """FSDP2 (sharded teacher and student) on 2 gloo processes: same weights as one process, and a SIGKILL in
    the middle of stage 2 resumes from the sharded checkpoint to the same result."""
    teacher, text, ref = reference_run
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29519", "-m"]
    run(distill_cmd(teacher, tmp_path / "fsdp", text, "parallel=fsdp", launcher=torchrun))
    got = load_file(tmp_path / "fsdp" / "model.safetensors")
    assert set(got) == set(ref)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-4, atol=1e-5, msg=name)
    out = tmp_path / "fsdp_killed"
    r = run(distill_cmd(teacher, out, text, "parallel=fsdp", launcher=torchrun), {"LAWCAT_FAULT_AT_STEP": "stage2:7"},
            check=False)
    assert r.returncode != 0
    assert any(p.name.startswith("rank") for p in (out / "state" / "stage2").iterdir())
    run(distill_cmd(teacher, out, text, "parallel=fsdp", "--resume", launcher=torchrun))
    again = load_file(out / "model.safetensors")
    for name in ref:
        torch.testing.assert_close(again[name], got[name], rtol=1e-5, atol=1e-6, msg=name)


def test_resume_with_another_recipe_refused(text_setup, tmp_path):
    teacher, text = text_setup
    out = tmp_path / "run"
    r = run(distill_cmd(teacher, out, text), {"LAWCAT_FAULT_AT_STEP": "stage1:4"}, check=False)
    assert r.returncode == -9
    r = run(distill_cmd(teacher, out, text, "--resume", "stage1.lr=0.5"), check=False)
    assert r.returncode == 2 and "recipe differs" in r.stderr
    run(distill_cmd(teacher, out, text, "--resume"))  # the same recipe still resumes
    assert (out / "model.safetensors").is_file()


def test_time_cap_stops_a_stage_and_the_run_still_saves(text_setup, tmp_path):
    """stage.max_seconds ends a stage early (checkpointed, marked in the summary); the next stage and the save
    still happen, so a time-boxed GPU run always brings a student back."""
    teacher, text = text_setup
    out = tmp_path / "capped"
    run(distill_cmd(teacher, out, text, "stage1.max_seconds=0"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stage1"]["time_capped"] and summary["stage1"]["steps"] == 0
    assert summary["stage1"]["planned_steps"] > 0
    assert not summary["stage2"]["time_capped"] and summary["stage2"]["steps"] == summary["stage2"]["planned_steps"]
    assert (out / "model.safetensors").is_file() and (out / "state" / "stage1").is_dir()


def test_max_seconds_pauses_the_run_and_resume_ends_on_the_same_weights(reference_run, tmp_path):
    """`--max-seconds` spreads one run over several calls: it pauses checkpointed, saves no student, and --resume
    finishes it with the weights of an uninterrupted run."""
    teacher, text, ref = reference_run
    out = tmp_path / "paused"
    r = run(distill_cmd(teacher, out, text, "--max-seconds", "0"))
    assert "paused" in r.stdout and "--resume" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paused"] and summary["stage1"]["paused"] and "stage2" not in summary
    assert not (out / "model.safetensors").exists() and (out / "state" / "stage1").is_dir()
    run(distill_cmd(teacher, out, text, "--resume"))
    got = load_file(out / "model.safetensors")
    assert set(got) == set(ref)
    for name in ref:
        assert torch.equal(got[name], ref[name]), name


def test_fsdp_with_gradient_accumulation_equals_single_process(reference_run, tmp_path):
    """2 sharded processes, each splitting its rows into 2 micro-batches per step in both stages (FSDP
    reduce-scatters after each one and adds them up): the weights of one process without accumulation."""
    teacher, text, ref = reference_run
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29521", "-m"]
    run(distill_cmd(teacher, tmp_path / "acc", text, "parallel=fsdp", "stage1.grad_accum=2", "stage2.grad_accum=2",
                    launcher=torchrun))
    got = load_file(tmp_path / "acc" / "model.safetensors")
    assert set(got) == set(ref)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-4, atol=1e-5, msg=name)
