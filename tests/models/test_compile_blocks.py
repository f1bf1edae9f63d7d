"""compile_blocks: the teacher's norms and MLP under torch.compile, in place (same outputs, same state dict)."""
import pytest
import torch

from lawcat import LawcatConfig, linearize
from lawcat.models.compile_blocks import compile_blocks, compiled_blocks
from tests.conftest import make_teacher


def _pair():
    teacher = make_teacher("llama", num_hidden_layers=2)
    student = linearize(teacher, LawcatConfig.from_preset("lawcat", chunk_size=16)).eval()
    return teacher, student


def test_compiled_blocks_give_the_same_outputs_and_keep_the_state_dict():
    """The eager backend keeps the test quick; inductor is what a GPU run uses (lawcat bench --compile-blocks)."""
    teacher, student = _pair()
    ids = torch.randint(4, 97, (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref_teacher = teacher(input_ids=ids).logits
        ref_student, ref_cache = student.prefill(ids)
        keys = list(student.state_dict())
        assert compile_blocks(student, backend="eager") == 2 * 3 + 1
        # shared with the teacher: compiled once, for both
        assert compiled_blocks(teacher) == compiled_blocks(student) == 7 and compile_blocks(teacher) == 0
        torch.testing.assert_close(teacher(input_ids=ids).logits, ref_teacher)
        got, cache = student.prefill(ids)
        torch.testing.assert_close(got, ref_student)
        step = ids[:, :1]  # a one-token step through the compiled blocks too
        torch.testing.assert_close(student(input_ids=step, past_key_values=cache, use_cache=True).logits,
                                   student(input_ids=step, past_key_values=ref_cache, use_cache=True).logits)
    assert list(student.state_dict()) == keys


def test_a_model_without_layers_is_refused():
    with pytest.raises(ValueError, match="Llama-style"):
        compile_blocks(torch.nn.Linear(2, 2))
