"""Stage 2's read-back-free loss (the one its CUDA graph captures) and GraphedStage2 (lawcat.distill.stage2)."""
import contextlib
from functools import partial
from types import SimpleNamespace

import pytest
import torch

from lawcat import LawcatConfig, linearize
from lawcat.distill.recipe import recipe_from_dict
from lawcat.distill.run import stage2_loss_fn
from lawcat.distill.stage2 import GraphedStage2, stage2_count, stage2_loss, stage2_loss_right_padded
from lawcat.errors import LawcatError
from lawcat.models.lora import add_lora, lora_parameters
from tests.conftest import make_teacher


def _student(preset="lawcat", device="cpu", **cfg):
    torch.manual_seed(0)
    student = linearize(make_teacher("llama", num_hidden_layers=3),
                        LawcatConfig.from_preset(preset, chunk_size=16, **cfg))
    add_lora(student, r=4, alpha=8)
    student.to(device).requires_grad_(False)
    params = lora_parameters(student) + student.lawcat_parameters()
    for p in params:
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))  # LoRA's B starts at zero; make every parameter matter
        p.requires_grad_(True)
    return student.train(), params


def _batch(seed, B, T, lengths, answer=5):
    """Right-padded rows with an answer span of `answer` tokens at the end of each row, as the task data has."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 97, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    labels = torch.full((B, T), -100)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        labels[row, n - answer:n] = ids[row, n - answer:n]
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask, "labels": labels}


def _run(params, step):
    for p in params:
        p.grad = None
    loss = step()
    return loss.detach().clone(), [p.grad.clone() for p in params]


@pytest.mark.parametrize("preset", ["lawcat", "lolcats"])
def test_right_padded_loss_equals_the_position_gathering_one(preset):
    """Logits everywhere and no mask give stage2_loss's loss and gradients on a right-padded batch."""
    student, params = _student(preset)
    batch = _batch(1, 3, 90, [90, 70, 31])
    n = float((batch["labels"][:, 1:] != -100).sum())
    ref = _run(params, lambda: stage2_loss(student, contextlib.nullcontext, batch, n, True))
    got = _run(params, lambda: stage2_loss_right_padded(student, contextlib.nullcontext, batch, n, True))
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=0)
    for a, b in zip(got[1], ref[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def _batch_of_text_and_answers():
    """Row 0 labelled throughout (a general text row), rows 1-2 on a 3-token answer, row 3 without labels."""
    batch = _batch(2, 4, 60, [60, 60, 40, 25], answer=3)
    batch["labels"][0, :60] = batch["input_ids"][0]
    batch["labels"][3] = -100
    return batch


def test_row_mean_weighs_each_labelled_row_equally():
    student, params = _student()
    batch = _batch_of_text_and_answers()
    assert stage2_count(batch) == 59 + 3 + 3 and stage2_count(batch, row_mean=True) == 3
    with torch.no_grad():
        logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    per_row = [torch.nn.functional.cross_entropy(logits[r][labels[r] != -100].float(), labels[r][labels[r] != -100])
               for r in range(3)]
    by_token = stage2_loss(student, contextlib.nullcontext, batch, stage2_count(batch), False)
    by_row = stage2_loss(student, contextlib.nullcontext, batch, 3.0, False, row_mean=True)
    torch.testing.assert_close(by_row, sum(per_row) / 3, rtol=1e-5, atol=0)
    torch.testing.assert_close(by_token, (59 * per_row[0] + 3 * per_row[1] + 3 * per_row[2]) / 65, rtol=1e-5,
                               atol=0)
    assert not torch.isclose(by_row, by_token)   # the text row dominates the token mean, not the row mean


def test_row_mean_right_padded_equals_the_position_gathering_one():
    student, params = _student()
    batch = _batch_of_text_and_answers()
    ref = _run(params, lambda: stage2_loss(student, contextlib.nullcontext, batch, 3.0, True, row_mean=True))
    got = _run(params, lambda: stage2_loss_right_padded(student, contextlib.nullcontext, batch, 3.0, True,
                                                        row_mean=True))
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=0)
    for a, b in zip(got[1], ref[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_graphed_stage2_refuses_a_cpu_student():
    student, params = _student()
    with pytest.raises(LawcatError, match="stage2.cuda_graph needs a CUDA device"):
        GraphedStage2(student, params)


@pytest.mark.parametrize("device,sharded,match", [("cpu", None, "CUDA device"), ("cuda", object(), "FSDP")])
def test_cuda_graph_run_errors(device, sharded, match):
    recipe = recipe_from_dict({"stage2": {"cuda_graph": True}})
    student, params = _student()
    with pytest.raises(LawcatError, match=match):
        stage2_loss_fn(recipe, student, params, contextlib.nullcontext, 0, SimpleNamespace(device=torch.device(device)),
                       sharded)


# ---- on the GPU --------------------------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("backend,preset,row_mean", [("fla", "lawcat", False), ("triton", "lawcat", False),
                                                     ("triton", "lolcats", False), ("triton", "lawcat", True)])
def test_replays_equal_the_eager_step(backend, preset, row_mean):
    """Three steps, two padded shapes, parameters changed between them: each replay's loss and gradients match
    the eager stage2_loss under bf16."""
    student, params = _student(preset, device="cuda", gla_backend=backend)
    ac = partial(torch.autocast, "cuda", dtype=torch.bfloat16)
    graphed = GraphedStage2(student, params, ac, warmup=1, row_mean=row_mean)
    for i, (T, lengths) in enumerate([(300, [300, 211]), (280, [280, 280]), (350, [97, 350])]):
        batch = {k: v.cuda() for k, v in _batch(10 + i, 2, T, lengths).items()}
        n = float(stage2_count(batch, row_mean))
        ref = _run(params, lambda: stage2_loss(student, ac, batch, n, True, row_mean=row_mean))
        got = _run(params, lambda: graphed(batch, n))
        torch.testing.assert_close(got[0], ref[0], rtol=2e-2, atol=0)
        a, b = torch.cat([g.flatten() for g in got[1]]), torch.cat([g.flatten() for g in ref[1]])
        err = ((a - b).norm() / b.norm()).item()
        print(f"\nSTAGE2-GRAPH-vs-EAGER {backend} {preset} T={T}: loss {got[0].item():.5g} vs {ref[0].item():.5g}, "
              f"grad rel err {err:.1e}")
        assert err < 3e-2
        with torch.no_grad():
            for p in params:
                p.add_(0.01 * torch.randn_like(p))
    assert (graphed.replays, len(graphed.graphs), graphed.eager_steps) == (3, 2, 0)
    graphed.release()
    assert not graphed.graphs and all(p.grad is None for p in params)
