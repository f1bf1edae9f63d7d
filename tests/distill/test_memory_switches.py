"""The switches that trade time for memory change nothing else: gradient accumulation (a batch in micro-batches,
eager and replayed from CUDA graphs, resumed exactly) and stage 2's activation checkpointing."""
import contextlib
import json
from functools import partial

import pytest
import torch

from lawcat import LawcatConfig, linearize
from lawcat.data import BatchIterator, Encoded
from lawcat.distill.distributed import DistContext
from lawcat.distill.recipe import Stage1Spec, Stage2Spec, recipe_from_dict
from lawcat.distill.run import stage1_loss_fn, stage2_loss_fn
from lawcat.distill.stage2 import checkpointed_layers, stage2_loss
from lawcat.distill.trainer import Trainer
from lawcat.errors import LawcatError
from lawcat.models.lora import add_lora, lora_parameters
from tests.conftest import make_teacher

LENGTHS = [40, 33, 40, 21, 29, 40, 12, 37]


def _rows(lengths=LENGTHS, answer=5, seed=0):
    """Encoded rows with an answer span of `answer` tokens at the end of each, as the task data has."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for n in lengths:
        ids = torch.randint(4, 97, (n,), generator=g).tolist()
        rows.append(Encoded(ids, [-100] * (n - answer) + ids[n - answer:]))
    return rows


def _student(stage: int, lora_dropout: float = 0.0):
    torch.manual_seed(0)
    student = linearize(make_teacher("llama", num_hidden_layers=2), LawcatConfig(chunk_size=16))
    if stage == 2:
        add_lora(student, r=4, alpha=8, dropout=lora_dropout)
    student.requires_grad_(False)
    params = student.lawcat_parameters() if stage == 1 else lora_parameters(student)
    for p in params:  # off the init (LoRA's B is zero), so every parameter gets a gradient
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))
        p.requires_grad_(True)
    names = {id(p) for p in params}
    return student.train(), {n: p for n, p in student.named_parameters() if id(p) in names}


def _trainer(stage, student, params, run_dir, rows=None, **spec):
    recipe = recipe_from_dict({})
    ctx = DistContext()
    spec_cls = Stage1Spec if stage == 1 else Stage2Spec
    spec = spec_cls(**{"lr": 1e-2, "grad_clip": None, "keep_best": False, "schedule": "constant", **spec})
    batches = BatchIterator(rows or _rows(), spec.batch_size, 0, seed=0, shuffle=True, bucket=False, epochs=None,
                            drop_last=True, padding_side="right")
    if stage == 1:
        loss_fn = stage1_loss_fn(recipe, student, contextlib.nullcontext, 0, ctx, None)
        count_fn = lambda b: int(b["attention_mask"].sum())  # noqa: E731
    else:
        loss_fn = stage2_loss_fn(recipe, student, list(params.values()), contextlib.nullcontext, 0, ctx, None)
        count_fn = lambda b: int((b["labels"][:, 1:] != -100).sum())  # noqa: E731
    run_dir.mkdir(parents=True, exist_ok=True)
    return Trainer(f"stage{stage}", params, spec, batches, [], loss_fn, count_fn, run_dir, ctx)


def _losses(run_dir):
    return [r["loss"] for r in map(json.loads, (run_dir / "log.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.parametrize("stage", [1, 2])
def test_two_micro_batches_of_two_equal_one_batch_of_four(tmp_path, stage):
    """One optimizer step on a batch of 4 rows: the same loss, gradients and parameters whether it goes through
    the loss whole or as 2 micro-batches of 2 (each divided by the whole batch's token count)."""
    runs = {}
    for accum in (1, 2):
        student, params = _student(stage)
        trainer = _trainer(stage, student, params, tmp_path / f"accum{accum}", batch_size=4, grad_accum=accum,
                           max_steps=1)
        trainer.run()
        assert trainer.step == 1
        runs[accum] = (_losses(tmp_path / f"accum{accum}"), {n: (p.detach().clone(), p.grad.clone())
                                                              for n, p in params.items()})
    (loss1, one), (loss2, two) = runs[1], runs[2]
    assert loss2 == pytest.approx(loss1, rel=1e-6)
    for name, (weight, grad) in one.items():
        torch.testing.assert_close(two[name][1], grad, rtol=1e-5, atol=1e-7, msg=name)
        # AdamW's first step is lr * g / (|g| + eps): where |g| is near eps (1e-8), the gradients' last-bit
        # differences move a weight by up to ~1e-6 of the lr=1e-2 step
        torch.testing.assert_close(two[name][0], weight, rtol=0, atol=1e-5, msg=name)


@pytest.mark.parametrize("limit,sizes", [(80, [2, 2]), (30, [1, 1, 1, 1]), (160, [4])])
def test_a_token_limit_splits_a_batch_of_long_rows(tmp_path, limit, sizes):
    """`micro_batch_tokens`: 4 rows padded to 40 tokens go in micro-batches of at most `limit` tokens (a row over
    the limit alone), with the loss, gradients and step of the whole batch."""
    rows = _rows([40, 40, 40, 40])
    runs = {}
    for cap in (0, limit):
        student, params = _student(2)
        trainer = _trainer(2, student, params, tmp_path / f"cap{cap}", rows=rows, batch_size=4, max_steps=1,
                           micro_batch_tokens=cap)
        batch = next(iter(BatchIterator(rows, 4, 0, shuffle=False, bucket=False, epochs=1, padding_side="right")))
        assert [len(m["input_ids"]) for m in trainer._micro_batches(batch, True)] == ([4] if cap == 0 else sizes)
        trainer.run()
        runs[cap] = (_losses(tmp_path / f"cap{cap}"), {n: p.grad.clone() for n, p in params.items()})
    assert runs[limit][0] == pytest.approx(runs[0][0], rel=1e-6)
    for name, grad in runs[0][1].items():
        torch.testing.assert_close(runs[limit][1][name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_validation_in_micro_batches_gives_the_whole_batch_loss(tmp_path):
    """Validation goes through micro-batches too (its memory is the step's), the last short batch included
    (10 rows in batches of 4: 4, 4, 2), and reports the loss of whole batches."""
    student, params = _student(2)
    val = list(BatchIterator(_rows(LENGTHS + [30, 17], seed=3), 4, 0, shuffle=False, bucket=False, epochs=1,
                             padding_side="right"))
    assert [len(b["input_ids"]) for b in val] == [4, 4, 2]
    got = {}
    for accum in (1, 4):
        trainer = _trainer(2, student, params, tmp_path / f"v{accum}", batch_size=4, grad_accum=accum)
        trainer.val_batches = val
        got[accum] = trainer.validate()
    assert got[4] == pytest.approx(got[1], rel=1e-6)


def test_accumulated_run_resumes_exactly(tmp_path):
    """Paused after 2 of 4 optimizer steps (2 micro-batches each, LoRA dropout drawing random numbers in each) and
    resumed: the weights of the uninterrupted run, bit for bit, so steps, data position and RNG count alike."""
    spec = dict(batch_size=4, grad_accum=2, epochs=2.0, save_every=1)
    student, params = _student(2, lora_dropout=0.1)
    torch.manual_seed(7)
    _trainer(2, student, params, tmp_path / "whole", **spec).run()
    whole = {n: p.detach().clone() for n, p in params.items()}

    student, params = _student(2, lora_dropout=0.1)
    torch.manual_seed(7)
    first = _trainer(2, student, params, tmp_path / "split", **spec)
    first._time_check = lambda t0: "pause" if first.step == 2 else None
    first.run()
    assert first.paused and first.step == 2
    student, params = _student(2, lora_dropout=0.1)
    torch.manual_seed(99)                       # the checkpoint's RNG state must win over this
    again = _trainer(2, student, params, tmp_path / "split", **spec)
    again.load()
    assert again.step == 2
    again.run()
    assert again.step == again.total == 4
    for name, weight in whole.items():
        assert torch.equal(params[name].detach(), weight), name


def test_a_share_too_small_to_split_is_one_clear_error(tmp_path):
    student, params = _student(1)
    trainer = _trainer(1, student, params, tmp_path, batch_size=2, grad_accum=4)  # no recipe check on this path
    with pytest.raises(LawcatError, match="2 row.*cannot be split into grad_accum=4"):
        trainer.run()


# ---- activation checkpointing -----------------------------------------------------------------------------------
def test_checkpointed_layers_give_the_same_gradients_and_recompute():
    """Stage 2 with each decoder layer checkpointed: the loss and gradients without it (LoRA dropout included:
    the recompute replays the forward's random numbers), every layer's MLP entered twice (the forward and the
    recompute), and the layers' forward and parameter names as before once the block ends."""
    student, params = _student(2, lora_dropout=0.1)
    batch = next(iter(BatchIterator(_rows(), 4, 0, shuffle=False, bucket=False, epochs=1, padding_side="right")))
    n = float((batch["labels"][:, 1:] != -100).sum())
    names = [name for name, _ in student.named_parameters()]
    calls = []
    for layer in student.model.layers:
        # a pre-hook: the recompute stops once it has rebuilt the last saved tensor, inside the MLP
        layer.mlp.register_forward_pre_hook(lambda *_: calls.append(1))
    runs = []
    for on in (False, True):
        for p in params.values():
            p.grad = None
        calls.clear()
        torch.manual_seed(5)
        with checkpointed_layers(student, on):
            loss = stage2_loss(student, contextlib.nullcontext, batch, n, True)
        runs.append((loss.detach(), [p.grad.clone() for p in params.values()], len(calls)))
    (loss0, grads0, calls0), (loss1, grads1, calls1) = runs
    torch.testing.assert_close(loss1, loss0, rtol=1e-6, atol=0)
    for a, b in zip(grads1, grads0):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    n_layers = len(student.model.layers)
    assert (calls0, calls1) == (n_layers, 2 * n_layers)
    assert not any("forward" in vars(layer) for layer in student.model.layers)
    assert [name for name, _ in student.named_parameters()] == names


# ---- on the GPU --------------------------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _graphed(stage, student, params):
    from lawcat.distill.stage1_graph import GraphedStage1
    from lawcat.distill.stage2 import GraphedStage2

    ac = partial(torch.autocast, "cuda", dtype=torch.bfloat16)
    if stage == 1:
        return GraphedStage1(student, params, 1000.0, ac, warmup=1), ac
    return GraphedStage2(student, params, ac, warmup=1), ac


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("stage", [1, 2])
def test_replayed_micro_batches_accumulate_like_eager_ones(stage):
    """Two micro-batches per step through the CUDA-graph step: the first of the same shape as the second (the
    second replay overwrites the graph's gradient buffers), then one whose second micro-batch is a new shape (its
    capture clears .grad): the accumulated gradients match the eager accumulation under bf16."""
    from lawcat.distill.stage1 import attention_transfer_step

    student, named = _student(stage)
    student.cuda()
    params = list(named.values())
    graphed, ac = _graphed(stage, student, params)
    loss_of = (lambda b, n: attention_transfer_step(student, b, 1000.0, n, ac, right_padded=True)) if stage == 1 \
        else (lambda b, n: stage2_loss(student, ac, b, n, True))
    for shapes in ([40, 40], [40, 130]):
        micro = [next(iter(BatchIterator(_rows([T, T - 7], seed=T + i), 2, 0, shuffle=False, bucket=False, epochs=1,
                                         padding_side="right"))) for i, T in enumerate(shapes)]
        micro = [{k: v.cuda() for k, v in b.items()} for b in micro]
        count = float(sum(int(b["attention_mask"].sum()) if stage == 1 else int((b["labels"][:, 1:] != -100).sum())
                          for b in micro))
        grads = []
        for step in (loss_of, graphed):
            for p in params:
                p.grad = None
            for b in micro:
                step(b, count)
            grads.append(torch.cat([p.grad.flatten() for p in params]))
        err = ((grads[1] - grads[0]).norm() / grads[0].norm()).item()
        print(f"\nACCUM-GRAPH-vs-EAGER stage{stage} shapes {shapes}: grad rel err {err:.1e}")
        assert err < 3e-2
    assert graphed.replays == 4 and len(graphed.graphs) == 2 and graphed.eager_steps == 0
    graphed.release()
