"""Stage 1 lowers the attention MSE; stage 2 lowers the LM loss; LoRA merges exactly and round-trips."""
import contextlib

import pytest
import torch

from lawcat import LawcatConfig, LawcatForCausalLM, linearize
from lawcat.distill.stage1 import attention_transfer_step, per_layer_mse
from lawcat.models.lora import add_lora, lora_parameters, merge_lora
from tests.conftest import make_teacher


def _batch(seed=0, B=4, T=40):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 97, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 30:] = 0  # some right padding, as the collator produces
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def test_stage1_lowers_every_layers_mse():
    torch.manual_seed(0)
    student = linearize(make_teacher("qwen3"), LawcatConfig(chunk_size=16))
    student.requires_grad_(False)
    params = student.lawcat_parameters()
    for p in params:
        p.requires_grad_(True)
    batch = _batch()
    before = per_layer_mse(student, batch)
    opt = torch.optim.AdamW(params, lr=1e-2)
    n = float(batch["attention_mask"].sum())
    for _ in range(40):
        opt.zero_grad()
        attention_transfer_step(student, batch, 1000.0, n)
        opt.step()
    after = per_layer_mse(student, batch)
    assert all(a < 0.7 * b for a, b in zip(after, before)), (before, after)
    # the teacher's projections were never touched
    assert all(p.grad is None for n_, p in student.named_parameters() if n_ in student.teacher_param_names)


def test_stage1_grads_only_reach_own_layer():
    student = linearize(make_teacher("llama"), LawcatConfig())
    student.requires_grad_(False)
    for p in student.lawcat_parameters():
        p.requires_grad_(True)
    attention_transfer_step(student, _batch(), 1000.0, 100.0)
    new_params = student.model.layers[0].self_attn.new_parameters()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in new_params)


def test_stage2_lora_lowers_loss_and_merges_exactly(tmp_path):
    torch.manual_seed(0)
    student = linearize(make_teacher("mistral"), LawcatConfig())
    student.requires_grad_(False)
    params = add_lora(student, r=4, alpha=8)
    assert len(params) == 2 * 4 * 2  # A and B, four projections, two layers
    for p in params:
        p.requires_grad_(True)
    batch = _batch(1)
    opt = torch.optim.AdamW(params, lr=5e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                       use_cache=False).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1
    student.eval()
    with torch.no_grad():
        before = student(batch["input_ids"]).logits
        student.save_pretrained(tmp_path / "separate")           # LoRA kept apart
        changed = merge_lora(student)
        after = student(batch["input_ids"]).logits
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert len(changed) == 8 and not lora_parameters(student)
    student.save_pretrained(tmp_path / "merged_lora")
    teacher = make_teacher("mistral")  # pristine weights: merging changed the shared tensors of the first one
    for name in ("separate", "merged_lora"):
        loaded = LawcatForCausalLM.from_pretrained(tmp_path / name, teacher=make_teacher("mistral"))
        with torch.no_grad():
            torch.testing.assert_close(loaded(batch["input_ids"]).logits, before, rtol=1e-4, atol=1e-4)
    assert teacher is not None


def _grads(student, batch, layer_group):
    for p in student.lawcat_parameters():
        p.grad = None
    loss = attention_transfer_step(student, batch, 1000.0, 100.0, layer_group=layer_group)
    return loss, [p.grad.clone() for p in student.lawcat_parameters()]


@pytest.mark.parametrize("preset", ["lawcat", "lolcats", "lawcat-rope", "lawcat-shared-conv-separate-maps",
                                    "lawcat-no-norm", "lawcat-no-conv", "lawcat-swa64"])
def test_fused_layers_equal_layer_by_layer(family, preset):
    """All layers as one wide layer (layer_group 0, and groups that split the stack) give the per-layer loss
    and gradients: the layers share nothing, so fusing them changes launches, not arithmetic."""
    torch.manual_seed(0)
    student = linearize(make_teacher(family, num_hidden_layers=3), LawcatConfig.from_preset(preset, chunk_size=16))
    student.requires_grad_(False)
    for p in student.lawcat_parameters():  # move off the identity-like init so every parameter matters
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))
        p.requires_grad_(True)
    batch = _batch(3, B=3, T=37)
    ref_loss, ref_grads = _grads(student, batch, 1)
    for group in (0, 2):
        loss, grads = _grads(student, batch, group)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=0)
        # The fused path sums the conv as shifted multiply-adds, the per-layer one through conv1d: the same sum in
        # another order, so gradients agree to fp32 rounding (seen: 1.9e-6 on an entry of 5.6e-3), not bit for bit.
        for a, b in zip(grads, ref_grads):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_compiled_fused_stage1_equals_eager():
    """stage1.compile: the fused LAWCAT side under torch.compile (shift conv) gives the eager loss and gradients,
    on a padded batch. (Slow on CPU: ~2 min of compilation.)"""
    torch.manual_seed(0)
    student = linearize(make_teacher("llama", num_hidden_layers=2), LawcatConfig(chunk_size=16))
    student.requires_grad_(False)
    for p in student.lawcat_parameters():
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))
        p.requires_grad_(True)
    for batch in (_batch(1, B=2, T=37),):
        runs = []
        for compiled in (False, True):
            for p in student.lawcat_parameters():
                p.grad = None
            loss = attention_transfer_step(student, batch, 1000.0, 100.0, compile=compiled)
            runs.append((loss, [p.grad.clone() for p in student.lawcat_parameters()]))
        torch.testing.assert_close(runs[1][0], runs[0][0], rtol=1e-5, atol=0)
        for a, b in zip(runs[1][1], runs[0][1]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["fla", "triton"])
def test_fused_layers_on_cuda_match_layer_by_layer_under_bf16(backend):
    """On the GPU (bf16 autocast, the fast GLA kernels with 3x the heads): fused == per layer within bf16."""
    from functools import partial

    torch.manual_seed(0)
    student = linearize(make_teacher("llama", num_hidden_layers=3), LawcatConfig(gla_backend=backend)).cuda()
    student.requires_grad_(False)
    for p in student.lawcat_parameters():
        p.requires_grad_(True)
    batch = {k: v.cuda() for k, v in _batch(5, B=2, T=300).items()}
    ac = partial(torch.autocast, "cuda", dtype=torch.bfloat16)
    runs = {}
    for group in (1, 0):
        for p in student.lawcat_parameters():
            p.grad = None
        loss = attention_transfer_step(student, batch, 1000.0, 100.0, ac, layer_group=group)
        runs[group] = (loss, torch.cat([p.grad.flatten() for p in student.lawcat_parameters()]))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=2e-2, atol=0)
    err = (runs[0][1] - runs[1][1]).norm() / runs[1][1].norm()
    print(f"\nFUSED-vs-PER-LAYER {backend}: loss {runs[0][0].item():.5g} vs {runs[1][0].item():.5g}, "
          f"grad rel err {err:.1e}")
    assert err < 3e-2


def test_stage2_loss_on_label_positions_equals_full_logits():
    """stage2_loss computes logits only where labels are; the loss and gradients are those of the full logits."""
    from lawcat.distill.stage2 import stage2_loss

    torch.manual_seed(0)
    student = linearize(make_teacher("llama"), LawcatConfig(chunk_size=16))
    params = add_lora(student, r=4, alpha=8)
    for p in params:
        with torch.no_grad():
            p.add_(0.1 * torch.randn_like(p))  # LoRA's B starts at zero; make every adapter matter
        p.requires_grad_(True)
    batch = _batch(2)
    batch["labels"][:, :-5] = -100          # an answer span at the end of each row, as the task data has
    batch["labels"][1, 25:33] = 7           # and one inside a padded row
    batch["labels"][1, 30:] = -100
    n = float((batch["labels"][:, 1:] != -100).sum())
    loss = stage2_loss(student, contextlib.nullcontext, batch, n, True)
    grads = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    full = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             batch["labels"][:, 1:].reshape(-1), ignore_index=-100,
                                             reduction="sum") / n
    full.backward()
    torch.testing.assert_close(loss, full)
    for a, p in zip(grads, params):
        torch.testing.assert_close(a, p.grad)
