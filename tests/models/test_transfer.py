"""lawcat.models.transfer: the per-layer (LAWCAT, softmax) pairs stage 1 trains on and diagnostics read."""
import torch

from lawcat import LawcatConfig, linearize
from lawcat.models.transfer import teacher_positions, transfer_pairs
from tests.conftest import make_teacher


def test_positions_count_real_tokens_only():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert teacher_positions(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 2, 2]]


def test_the_softmax_side_is_the_teachers_attention_flowing_on():
    """Each pair's target is the teacher layer's attention output before o_proj, computed from the teacher's own
    hidden states: the hidden state entering layer 1 is the teacher's after layer 0, whatever the student says."""
    teacher = make_teacher("llama", num_hidden_layers=2)
    student = linearize(teacher, LawcatConfig(chunk_size=16))
    ids = torch.randint(4, 97, (2, 23))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    seen = []
    hooks = [layer.self_attn.o_proj.register_forward_hook(lambda m, a, out: seen.append(a[0].detach()))
             for layer in teacher.model.layers]
    with torch.no_grad():
        teacher(input_ids=ids)
    for h in hooks:
        h.remove()
    pairs = list(transfer_pairs(student, batch))
    assert len(pairs) == 2
    for (pred, target), ref in zip(pairs, seen):
        assert pred.shape == target.shape == ref.shape
        torch.testing.assert_close(target, ref, rtol=1e-4, atol=1e-5)
        assert not pred.requires_grad and (pred - target).abs().max() > 0   # LAWCAT is not yet the softmax
