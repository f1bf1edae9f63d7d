"""Stage 1 lowers the attention MSE; stage 2 lowers the LM loss; LoRA merges exactly and round-trips."""
import torch

from lawcat import LawcatConfig, LawcatForCausalLM, linearize
from lawcat.distill.lora import add_lora, lora_parameters, merge_lora
from lawcat.distill.stage1 import attention_transfer_step, per_layer_mse
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
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in student.model.layers[0].self_attn.new_parameters())


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
