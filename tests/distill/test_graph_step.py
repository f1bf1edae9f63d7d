"""GraphedStep's behaviour that needs no GPU: a capture that runs out of memory becomes one clear error."""
import pytest
import torch

from lawcat.distill import graph_step
from lawcat.distill.graph_step import GraphedStep, _Graph
from lawcat.errors import LawcatError


def _step_without_cuda(name="stage2"):
    # GraphedStep refuses a CPU device in __init__; _capture itself only needs these attributes.
    step = GraphedStep.__new__(GraphedStep)
    step.params = [torch.nn.Parameter(torch.zeros(2))]
    step.name, step.pads, step.warmup, step.pool = name, {"input_ids": 0, "labels": -100}, 1, None
    step.graph_fn = step.eager_fn = lambda *a: torch.zeros(())
    step.autocast = None
    step.graphs = {(16, 832): _Graph(None, {}, torch.zeros(()))}
    return step


def test_a_capture_out_of_memory_is_one_clear_error_naming_the_switch(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.59 GiB.")

    monkeypatch.setattr(graph_step, "capture", out_of_memory)
    step = _step_without_cuda()
    batch = {"input_ids": torch.ones(8, 4000, dtype=torch.long), "labels": torch.ones(8, 4000, dtype=torch.long)}
    with pytest.raises(LawcatError) as err:
        step._capture(batch, 10, (8, 4032))
    message = str(err.value)
    assert "stage2.cuda_graph=false" in message
    assert "8 rows x 4032 tokens" in message and "16 x 832" in message
    assert isinstance(err.value.__cause__, torch.OutOfMemoryError)
    assert list(step.graphs) == [(16, 832)]  # the failed shape is not kept


def test_other_capture_failures_are_not_relabelled(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(graph_step, "capture", broken)
    batch = {"input_ids": torch.ones(2, 10, dtype=torch.long), "labels": torch.ones(2, 10, dtype=torch.long)}
    with pytest.raises(RuntimeError, match="stream is capturing"):
        _step_without_cuda()._capture(batch, 1, (2, 64))
