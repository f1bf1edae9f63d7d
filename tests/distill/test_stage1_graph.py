"""Stage 1 replayed from CUDA graphs (lawcat.distill.stage1_graph) and the unmasked right-padded step it relies on.

The CPU tests cover what does not need a GPU: the right-padded shortcut is exact, and cuda_graph is refused with
one clear error where it cannot run. The `cuda` tests compare replays with the eager step."""
import contextlib
from functools import partial
from types import SimpleNamespace

import pytest
import torch

from lawcat import LawcatConfig, linearize
from lawcat.distill.recipe import RecipeError, recipe_from_dict
from lawcat.distill.run import stage1_loss_fn
from lawcat.distill.stage1 import attention_transfer_step
from lawcat.distill.stage1_graph import GraphedStage1
from lawcat.errors import LawcatError
from tests.conftest import make_teacher


def _right_padded(seed, B, T, lengths):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 97, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return {"input_ids": ids.masked_fill(mask == 0, 0), "attention_mask": mask}


def _student(preset="lawcat", layers=3, device="cpu", **cfg):
    torch.manual_seed(0)
    student = linearize(make_teacher("llama", num_hidden_layers=layers),
                        LawcatConfig.from_preset(preset, chunk_size=16, **cfg)).to(device)
    student.requires_grad_(False)
    for p in student.lawcat_parameters():  # off the identity-like init, so every parameter matters
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))
        p.requires_grad_(True)
    return student


def _run(student, step):
    for p in student.lawcat_parameters():
        p.grad = None
    loss = step()
    return loss.detach().clone(), [p.grad.clone() for p in student.lawcat_parameters()]


@pytest.mark.parametrize("preset", ["lawcat", "lolcats", "lawcat-swa64"])
@pytest.mark.parametrize("layer_group", [0, 1])
def test_right_padded_step_equals_the_masked_one(preset, layer_group):
    """Rows padded at their end: running the layers unmasked gives the masked step's loss and gradients, since no
    real token can see a later pad."""
    student = _student(preset)
    batch = _right_padded(1, 3, 100, [100, 71, 12])   # past the 64-token window: its linear part runs too
    ref = _run(student, lambda: attention_transfer_step(student, batch, 1000.0, 183.0, layer_group=layer_group))
    got = _run(student, lambda: attention_transfer_step(student, batch, 1000.0, 183.0, layer_group=layer_group,
                                                        right_padded=True))
    torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=0)
    for a, b in zip(got[1], ref[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_without_the_promise_left_padding_stays_masked():
    """The shortcut is the caller's promise; without it a left-padded batch still takes the masked path (the
    same loss as its right-padded twin, which the unmasked path would not give)."""
    student = _student()
    right = _right_padded(2, 2, 20, [20, 13])
    left = {k: v.clone() for k, v in right.items()}
    for key in ("input_ids", "attention_mask"):
        left[key][1] = torch.roll(right[key][1], 7)
    a = attention_transfer_step(student, right, 1000.0, 33.0, backward=False, right_padded=True)
    b = attention_transfer_step(student, left, 1000.0, 33.0, backward=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=0)


def test_graphed_stage1_refuses_a_cpu_student():
    student = _student(layers=1)
    with pytest.raises(LawcatError, match="CUDA device"):
        GraphedStage1(student, student.lawcat_parameters(), 1000.0)


@pytest.mark.parametrize("overrides", [{"layer_group": 1}, {"compile": True}])
def test_cuda_graph_recipe_refuses_what_it_cannot_capture(overrides):
    with pytest.raises(RecipeError, match="stage1.cuda_graph captures the fused step"):
        recipe_from_dict({"stage1": {"cuda_graph": True, **overrides}})


@pytest.mark.parametrize("device,sharded,match", [("cpu", None, "CUDA device"), ("cuda", object(), "FSDP")])
def test_cuda_graph_run_errors(device, sharded, match):
    recipe = recipe_from_dict({"stage1": {"cuda_graph": True}})
    ctx = SimpleNamespace(device=torch.device(device))
    with pytest.raises(LawcatError, match=match):
        stage1_loss_fn(recipe, _student(layers=1), contextlib.nullcontext, 0, ctx, sharded)


# ---- on the GPU --------------------------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("backend,preset", [("fla", "lawcat"), ("triton", "lawcat"), ("triton", "lolcats")])
def test_replays_equal_the_eager_step(backend, preset):
    """Three steps, two padded shapes (T=300 and 280 share the 320 graph, 350 gets its own): each replay's loss and
    gradients match the eager, masked step under bf16, with the parameters changed between steps. (LoLCATs: the
    window's hybrid path, through fla whatever the backend.)"""
    student = _student(preset, gla_backend=backend, device="cuda")
    params = student.lawcat_parameters()
    ac = partial(torch.autocast, "cuda", dtype=torch.bfloat16)
    graphed = GraphedStage1(student, params, 1000.0, ac, warmup=1)
    for i, (T, lengths) in enumerate([(300, [300, 211]), (280, [280, 280]), (350, [97, 350])]):
        batch = {k: v.cuda() for k, v in _right_padded(10 + i, 2, T, lengths).items()}
        n = float(sum(lengths))
        ref = _run(student, lambda: attention_transfer_step(student, batch, 1000.0, n, ac))
        got = _run(student, lambda: graphed(batch, n))
        torch.testing.assert_close(got[0], ref[0], rtol=2e-2, atol=0)
        a, b = torch.cat([g.flatten() for g in got[1]]), torch.cat([g.flatten() for g in ref[1]])
        err = ((a - b).norm() / b.norm()).item()
        print(f"\nGRAPH-vs-EAGER {backend} {preset} T={T}: loss {got[0].item():.5g} vs {ref[0].item():.5g}, "
              f"grad rel err {err:.1e}")
        assert err < 3e-2
        with torch.no_grad():  # a parameter update between steps: the replay must read the new values
            for p in params:
                p.add_(0.01 * torch.randn_like(p))
    assert (graphed.replays, len(graphed.graphs), graphed.eager_steps) == (3, 2, 0)
    graphed.release()
    assert not graphed.graphs and all(p.grad is None for p in params)


@pytest.mark.cuda
@cuda
def test_strong_gates_replay_the_triton_graph_exactly():
    """Gates of -4 per step, beyond what a 64-row chunk factored around its middle row survives (|g| <= 2.5), yet
    not so strong that each output is just its own value (at -25 per step the feature maps' gradients are ~1e-9,
    all rounding noise): the graph of lawcat's Triton kernel replays them and matches the eager step."""
    student = _student(gla_backend="triton", device="cuda")
    with torch.no_grad():
        for layer in student.model.layers:
            layer.self_attn.gate.up.bias.fill_(-64.0)   # logsigmoid(-64) / 16 = -4 per step
    params = student.lawcat_parameters()
    ac = partial(torch.autocast, "cuda", dtype=torch.bfloat16)
    graphed = GraphedStage1(student, params, 1000.0, ac, warmup=1)
    for i in range(2):
        batch = {k: v.cuda() for k, v in _right_padded(3 + i, 2, 200, [200, 150]).items()}
        ref = _run(student, lambda: attention_transfer_step(student, batch, 1000.0, 350.0, ac))
        got = _run(student, lambda: graphed(batch, 350.0))
        assert torch.isfinite(got[0])
        torch.testing.assert_close(got[0], ref[0], rtol=2e-2, atol=0)
        a, b = torch.cat([g.flatten() for g in got[1]]), torch.cat([g.flatten() for g in ref[1]])
        assert ((a - b).norm() / b.norm()).item() < 3e-2
    assert (graphed.replays, len(graphed.graphs), graphed.eager_steps) == (2, 1, 0)
