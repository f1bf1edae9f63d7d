"""Run a long-context task over lengths for any model, the same way for teachers and students.

Students prefill in chunks through their recurrent cache and decode step by step, so a 32K-token sample needs
memory independent of its length; teachers (softmax models) use `generate()`. Samples of one length are
batched with left padding (both paths handle it exactly), decoding is greedy, scoring is the benchmark's own.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

from ..data import make_samples
from .records import ResultRecord, RunInfo
from .report import write_report
from .results import write_results

# Tokens to generate per task, as the original benchmarks do.
NEW_TOKENS = {"passkey": 10, "niah1": 128, "niah2": 128, "niah3": 128, "babilong-qa2": 20, "babilong-qa3": 20}


def _is_student(model) -> bool:
    return hasattr(model, "prefill") and hasattr(model, "new_cache")


@torch.no_grad()
def greedy_student(model, ids, mask, max_new_tokens: int, eos_id, chunk_size: int = 8192):
    """Chunked prefill, then one token at a time; rows stop at EOS. Returns new token ids [B, <=max_new]."""
    logits, cache = model.prefill(ids, attention_mask=mask, chunk_size=chunk_size)
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    out = []
    for _ in range(max_new_tokens):
        nxt = logits.argmax(-1)
        if eos_id is not None:
            nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
            done |= nxt == eos_id
        out.append(nxt)
        if bool(done.all()):
            break
        step = model(input_ids=nxt[:, None], past_key_values=cache, use_cache=True)
        logits = step.logits[:, -1]
    return torch.stack(out, 1)


@torch.no_grad()
def generate_batch(model, tokenizer, prompts: list[str], max_new_tokens: int, chat: bool = False,
                   chunk_size: int = 8192) -> list[str]:
    device = next(model.parameters()).device
    if chat:
        prompts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                 add_generation_prompt=True) for p in prompts]
    side, pad_token = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if pad_token is None:  # some tokenizers (the GGUF-converted SmolLM2 one) have none: pad with EOS, masked out
        tokenizer.pad_token = tokenizer.eos_token
    try:
        pad = tokenizer.pad_token_id
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not chat)
    finally:
        tokenizer.padding_side, tokenizer.pad_token = side, pad_token
    ids, mask = enc.input_ids.to(device), enc.attention_mask.to(device)
    if _is_student(model):
        new = greedy_student(model, ids, mask, max_new_tokens, tokenizer.eos_token_id, chunk_size)
    else:
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=pad, temperature=None, top_p=None, top_k=None)
        new = out[:, ids.shape[1]:]
    return [tokenizer.decode(row, skip_special_tokens=True) for row in new]


def make_all_samples(task: str, tokenizer, lengths: list[int], n: int, seed: int = 0, depth=None,
                     sample_kw: dict | None = None) -> list[list]:
    """The samples of every length, one process per length when cores allow (a 32K-token sample takes a few
    tenths of a second to build). Each length is one make_samples call, so the samples are the same either way.
    `sample_kw` goes to the generator (passkey `variant=`, BABILong `prompt="bare"`)."""
    kw = sample_kw or {}
    workers = min(len(lengths), max(1, (os.cpu_count() or 1) - 1))
    if workers <= 1:
        return [make_samples(task, tokenizer, L, n, seed=seed, depth=depth, **kw) for L in lengths]
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(make_samples, task, tokenizer, L, n, seed, depth, **kw) for L in lengths]
        return [f.result() for f in futures]


def rows_per_batch(length: int, batch_size: int, max_batch_tokens: int | None) -> int:
    """At most `batch_size` rows, and at most `max_batch_tokens` prompt tokens per batch: long prompts run a few
    at a time (a padded batch also makes softmax attention build a mask quadratic in the length)."""
    if not max_batch_tokens:
        return batch_size
    return max(1, min(batch_size, max_batch_tokens // max(1, length)))


def evaluate_task(model, tokenizer, task: str, lengths: list[int], n: int, model_name: str, seed: int = 0,
                  depth=None, batch_size: int = 1, chat: bool = False, chunk_size: int = 8192,
                  progress=print, max_batch_tokens: int | None = None, on_length=None,
                  sample_kw: dict | None = None) -> list[ResultRecord]:
    """Every sample of every length; `on_length(records_so_far)` runs after each length (partial results)."""
    records = []
    for length, samples in zip(lengths, make_all_samples(task, tokenizer, lengths, n, seed, depth, sample_kw)):
        t0 = time.perf_counter()
        rows = rows_per_batch(length, batch_size, max_batch_tokens)
        for i in range(0, len(samples), rows):
            part = samples[i:i + rows]
            outputs = generate_batch(model, tokenizer, [s.prompt for s in part], NEW_TOKENS[task], chat, chunk_size)
            records += [ResultRecord.from_sample(s, model_name, o) for s, o in zip(part, outputs)]
        cell = [r.score for r in records if r.length == length]
        progress(f"{model_name} {task} {length}: {100 * sum(cell) / len(cell):.1f} "
                 f"({len(cell)} samples, {time.perf_counter() - t0:.0f} s)")
        if on_length is not None:
            on_length(records)
    return records


def run_eval(model, tokenizer, model_name: str, task: str, lengths: list[int], n: int, out_dir, seed: int = 0,
             depth=None, batch_size: int = 1, chat: bool = False, chunk_size: int = 8192, settings=None,
             max_batch_tokens: int | None = None, sample_kw: dict | None = None):
    """Evaluate, then write results.json, results.md and the plots into out_dir. Returns the records.

    results.json is rewritten after every length, so an evaluation stopped part-way keeps the lengths it
    finished (and `lawcat compare` can still read them)."""
    info = RunInfo(model=model_name, task=task, seed=seed,
                   settings={"lengths": lengths, "n": n, "depth": depth, "chat": chat, "batch_size": batch_size,
                             "max_batch_tokens": max_batch_tokens, **(sample_kw or {}), **(settings or {})})
    out = Path(out_dir)
    records = evaluate_task(model, tokenizer, task, lengths, n, model_name, seed, depth, batch_size, chat, chunk_size,
                            max_batch_tokens=max_batch_tokens, on_length=lambda recs: write_results(out, recs, info),
                            sample_kw=sample_kw)
    write_results(out, records, info)
    write_report(out, records)
    return records
