"""The students this package ships, on the real default teacher: each loads by name and answers its own task."""
import pytest

import lawcat.weights as weights
from lawcat import LawcatForCausalLM
from lawcat.data import make_samples
from lawcat.eval.records import ResultRecord
from lawcat.eval.runner import generate_batch

# The task each shipped student is evaluated on here; a new student must be added (the first test says so).
TASKS = {"passkey-smollm2": "passkey", "niah-smollm2": "niah1"}


def test_every_shipped_student_is_listed_here():
    assert weights.list_shipped() == sorted(TASKS)


@pytest.mark.slow  # ~20 s per student on 2 cores: the teacher's load, two 1K prompts, 12 tokens each
@pytest.mark.parametrize("name", sorted(TASKS))
def test_shipped_student_answers_its_task_at_1k(name):
    model = LawcatForCausalLM.from_pretrained(name)
    assert model.config.lora is None  # its LoRA, saved apart, folded into the projections on a float32 load
    samples = make_samples(TASKS[name], model.tokenizer, 1024, 2, seed=0)
    outputs = generate_batch(model, model.tokenizer, [s.prompt for s in samples], max_new_tokens=12)
    records = [ResultRecord.from_sample(s, name, o) for s, o in zip(samples, outputs)]
    assert [r.score for r in records] == [1.0, 1.0], [(r.answer, r.output) for r in records]
