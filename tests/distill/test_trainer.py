"""The training loop's schedule and weight choice: plateau checked every eval_every steps with a floor, and the
stage ending on its best-validation weights (restored also after a resume and at a time cap)."""
import pytest
import torch

from lawcat.data import BatchIterator, Encoded
from lawcat.distill.distributed import DistContext
from lawcat.distill.recipe import StageSpec
from lawcat.distill.trainer import Trainer


def _batches(n=16, batch_size=2, epochs=None):
    rows = [Encoded([1, 2, 3], [1, 2, 3]) for _ in range(n)]
    return BatchIterator(rows, batch_size, 0, seed=0, shuffle=True, bucket=False, epochs=epochs, drop_last=True,
                         padding_side="right")


def _trainer(tmp_path, w, val_target=5.0, **spec):
    """Training pulls w towards 0 while validation wants it at `val_target`: from w = 3 the validation loss
    rises at every check after the first, so only the first check is ever the best."""
    def loss_fn(batch, count, backward):
        loss = (w - 0.0) ** 2 if backward else (w - val_target) ** 2
        if backward:
            loss.backward()
        return loss.detach()

    val = list(_batches(4, 2, epochs=1))
    spec = StageSpec(**{"epochs": 1.0, "lr": 0.1, "schedule": "constant", "grad_clip": None, **spec})
    return Trainer("stage1", {"w": w}, spec, _batches(), val, loss_fn, lambda b: 1, tmp_path, DistContext())


def test_plateau_fires_on_rising_validation_and_stops_at_its_floor(tmp_path):
    w = torch.nn.Parameter(torch.tensor(3.0))
    tr = _trainer(tmp_path, w, schedule="plateau", eval_every=1, plateau_patience=1, plateau_factor=0.5,
                  plateau_min_lr=0.02, epochs=2.0)
    tr.run()
    lrs = [r["lr"] for r in map(__import__("json").loads, (tmp_path / "log.jsonl").read_text().splitlines())
           if "val_loss" in r]
    assert lrs[0] == pytest.approx(0.1)
    assert min(lrs) == pytest.approx(0.02)      # reduced, then held at the floor
    assert any(a > b for a, b in zip(lrs, lrs[1:]))


def test_stage_ends_on_best_validation_weights(tmp_path):
    w = torch.nn.Parameter(torch.tensor(3.0))
    tr = _trainer(tmp_path, w, eval_every=2)
    summary = tr.run()
    assert summary["best_step"] == 2 and summary["restored_best"]
    # the weights after step 2 (two AdamW steps of lr 0.1 from 3.0), not the last ones (far closer to 0)
    assert w.item() == pytest.approx(2.8, abs=1e-3)


def test_without_keep_best_the_last_weights_stay(tmp_path):
    w = torch.nn.Parameter(torch.tensor(3.0))
    summary = _trainer(tmp_path, w, eval_every=2, keep_best=False).run()
    assert not summary["restored_best"] and w.item() < 2.5


def test_best_weights_survive_a_resume(tmp_path):
    w = torch.nn.Parameter(torch.tensor(3.0))
    first = _trainer(tmp_path, w, eval_every=2, save_every=4, max_steps=4)
    first.run()                                     # a stage cut at step 4: its checkpoint holds latest + best
    w2 = torch.nn.Parameter(torch.tensor(0.0))
    again = _trainer(tmp_path, w2, eval_every=2, save_every=4)
    again.load()
    assert again.step == 4 and again.best_step == 2
    assert w2.item() == pytest.approx(2.6, abs=1e-3)   # resumed from the latest weights, not the best
    again.run()
    assert w2.item() == pytest.approx(2.8, abs=1e-3)   # and ends on the best (step 2) weights


def test_time_capped_stage_restores_best_after_saving_latest(tmp_path):
    w = torch.nn.Parameter(torch.tensor(3.0))
    tr = _trainer(tmp_path, w, eval_every=1, max_seconds=0.0)
    tr.step = 0
    tr.run()                                        # stops before its first step: no validation, nothing to restore
    assert tr.time_capped and not tr.restored_best and w.item() == 3.0
