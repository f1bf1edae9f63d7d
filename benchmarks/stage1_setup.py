"""The shared set-up of the stage-1 benchmarks (profile_stage1.py, stage1_parts.py): a student whose LAWCAT
parameters alone train, and one padded batch of passkey training samples on its device."""
import contextlib
from functools import partial

import torch

from lawcat import LawcatConfig, linearize, load_teacher
from lawcat.data import BatchIterator, encode_all, make_samples, pad_token_id


def stage1_setup(teacher_src: str, tokenizer_dir, length: int, batch_size: int, gla_backend: str):
    """Returns (teacher, student, tokenizer, batch on the device, trainable params, autocast factory, device);
    the student adopts the teacher's modules, so the teacher is its own forward baseline."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher, tok = load_teacher(teacher_src, device=device, tokenizer_dir=tokenizer_dir)
    student = linearize(teacher, LawcatConfig(gla_backend=gla_backend))
    student.requires_grad_(False)
    params = student.lawcat_parameters()
    for p in params:
        p.requires_grad_(True)
    samples = make_samples("passkey", tok, length, batch_size, seed=0, purpose="train")
    batch = next(iter(BatchIterator(encode_all(tok, samples), batch_size, pad_token_id(tok), epochs=1)))
    batch = {k: v.to(device) for k, v in batch.items()}
    ac = (partial(torch.autocast, "cuda", dtype=torch.bfloat16) if device.type == "cuda"
          else contextlib.nullcontext)
    return teacher, student, tok, batch, params, ac, device
