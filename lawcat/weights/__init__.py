"""Shipped students: lawcat run directories inside the package, loadable by name.

    lawcat/weights/passkey-smollm2/   config.json, model.safetensors (save_pretrained's output; a newer save
                                      also writes generation_config.json and modeling_lawcat.py, neither of
                                      which loading by name needs)
                                      card.json: what it was trained for and how it scored (optional)

The tokenizer files are left out when they are the teacher's own (3.5 MB for SmolLM2): loading rebuilds the
student on its teacher, whose tokenizer it then uses (lawcat.models.linearize hands it over).

A name works wherever a run directory does (`LawcatForCausalLM.from_pretrained("passkey-smollm2")`,
`lawcat eval passkey-smollm2 ...`, bench, LM-eval): lawcat.models.checkpoint.resolve_model_spec maps it to its
folder, and loading checks the teacher's fingerprint as for any run directory (`teacher=` / `--teacher` say
where the teacher is when it is not where the student's config records it). This module imports nothing
heavy, so `lawcat list-weights` answers at once.

card.json (every key optional; written by hand or by a results script next to the weights):
    {"task": "passkey", "teacher": "default", "recipe": "recipes/passkey.yaml",
     "command": "lawcat distill --recipe recipes/passkey.yaml --teacher default --out runs/pk ...",
     "scores": {"1024": 100.0, "32768": 96.0},   # accuracy in percent by context length (tokens)
     "n": 50, "notes": "best of 3 seeds"}
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent  # tests point this at a temporary folder
CARD_NAME = "card.json"


def list_shipped() -> list[str]:
    """Names of the shipped students in this install, sorted; a folder without config.json is not one."""
    if not ROOT.is_dir():
        return []
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / "config.json").is_file())


def is_shipped(name) -> bool:
    # A bare name only: "runs/pk" or "./pk" is a path the user typed, never a shipped student.
    name = str(name)
    return "/" not in name and "\\" not in name and name in list_shipped()


def shipped_path(name: str) -> Path:
    """The folder of shipped student `name`; an unknown name is an error that lists the shipped ones."""
    if not is_shipped(name):
        from ..errors import UnknownModelError

        raise UnknownModelError(f"no shipped student named {name!r}; {shipped_names_text()}")
    return ROOT / name


def shipped_names_text() -> str:
    names = list_shipped()
    if not names:
        return "this install ships no students yet"
    return "shipped students: " + ", ".join(names)


def read_card(name: str) -> dict:
    """The card of a shipped student ({} when it has none or it cannot be read: a card is documentation only)."""
    file = ROOT / name / CARD_NAME
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
