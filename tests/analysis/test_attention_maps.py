"""lawcat.analysis.attention_maps: the student's implied weights reproduce its layer's output, the teacher's are the
ones its own attention applies."""
import pytest
import torch

from lawcat.analysis.attention_maps import (
    layer_input,
    row_distance,
    student_attention_weights,
    teacher_attention_weights,
)
from lawcat.layers.attention import repeat_kv
from tests.conftest import make_teacher, trained_student

T = 21

CASES = {  # family, LawcatConfig fields: every part that changes the weights
    "lawcat": ("llama", {}),
    "qwen3 norms, GQA 2": ("qwen3", {}),
    "mistral GQA 4, no normalizer": ("mistral", {"normalize": False}),
    "shared conv, separate maps, qkv bias": ("qwen2", {"shared_conv": True, "shared_feature_map": False}),
    "no conv, no gate": ("llama", {"use_conv": False, "use_gate": False}),
    "rope + window 4 (lolcats-like)": ("llama", {"use_rope": True, "window_size": 4}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_implied_weights_times_v_is_the_layers_output(case):
    family, config = CASES[case]
    student = trained_student(make_teacher(family), **config)
    ids = torch.randint(4, 90, (1, T))
    for layer in range(len(student.model.layers)):
        x, rope = layer_input(student, ids, layer)
        attn = student.model.layers[layer].self_attn
        with torch.no_grad():
            out, _ = attn.linear_attention(x, None, None, rope)          # [1, T, H*D], before o_proj
            v = repeat_kv(attn.project(x)[2], attn.groups)[0].double()    # [T, H, D]
        weights = student_attention_weights(attn, x, rope)
        assert weights.shape == (attn.num_heads, T, T)
        assert bool((weights.triu(1) == 0).all())                         # causal
        torch.testing.assert_close(torch.einsum("hts,shd->thd", weights, v).reshape(T, -1).float(), out[0],
                                   rtol=1e-4, atol=1e-5)
        rows = weights.sum(-1)
        if config.get("normalize", True):
            torch.testing.assert_close(rows, torch.ones_like(rows), rtol=0, atol=1e-4)  # within eps / denominator
        else:
            assert rows.std() > 0.01                                      # raw Eq. 8 numerator weights
    head = student_attention_weights(attn, x, rope, heads=[1])
    torch.testing.assert_close(head[0], weights[1])


def test_layer_input_is_what_the_layer_receives():
    student = trained_student(make_teacher("llama"))
    ids = torch.randint(4, 90, (1, T))
    seen = []
    hook = student.model.layers[1].self_attn.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        student(input_ids=ids, use_cache=False)
    hook.remove()
    x, rope = layer_input(student, ids, 1)
    torch.testing.assert_close(x, seen[0])
    assert rope is None                                                   # RoPE is off on the LAWCAT path


@pytest.mark.parametrize("family", ["llama", "qwen3", "mistral"])
def test_teacher_weights_are_the_ones_its_attention_applies(family):
    teacher = make_teacher(family)
    ids = torch.randint(4, 90, (1, T))
    attn = teacher.model.layers[1].self_attn
    seen = {}
    hooks = [attn.v_proj.register_forward_hook(lambda _m, _i, out: seen.update(v=out)),
             attn.o_proj.register_forward_pre_hook(lambda _m, args: seen.update(o=args[0]))]
    with torch.no_grad():
        teacher(input_ids=ids)
    for h in hooks:
        h.remove()
    before = teacher.config._attn_implementation
    weights = teacher_attention_weights(teacher, ids, 1)
    assert teacher.config._attn_implementation == before                  # eager for the call only
    H, D = teacher.config.num_attention_heads, attn.head_dim
    v = repeat_kv(seen["v"].view(1, T, -1, D), H // teacher.config.num_key_value_heads)[0]
    torch.testing.assert_close(torch.einsum("hts,shd->thd", weights, v).reshape(T, -1), seen["o"][0],
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(H, T))
    torch.testing.assert_close(teacher_attention_weights(teacher, ids, 1, heads=[2])[0], weights[2])


def test_row_distance():
    eye = torch.eye(4)
    assert row_distance(eye, eye) == 0.0
    assert row_distance(eye, eye.roll(1, dims=1)) == 1.0
    assert row_distance(eye, 3 * eye) == 0.0                                # rows are scaled to sum to one
