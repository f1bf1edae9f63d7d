"""Dataset loader for the lawcat_qa_* tasks: reads the JSONL beside this file, so the tasks run offline.

lm-eval calls a task's `custom_dataset` with the task's metadata and dataset_kwargs as keyword
arguments; `data_file` (a dataset_kwargs key) points the same tasks at another JSONL of the same shape.
"""
from __future__ import annotations

import json
from pathlib import Path

DATA_FILE = Path(__file__).with_name("lawcat_qa.jsonl")


def load_lawcat_qa(data_file: str | None = None, **_ignored):
    import datasets

    rows = [json.loads(line) for line in Path(data_file or DATA_FILE).read_text().splitlines() if line.strip()]
    splits = {}
    for split in ("train", "test"):
        part = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split]
        splits[split] = datasets.Dataset.from_list(part)
    return datasets.DatasetDict(splits)
