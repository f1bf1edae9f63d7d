"""The shipped recipes: one YAML per paper experiment (passkey, S-NIAH, BABILong) plus the CPU demo.

They are package data, so an installed lawcat (a wheel, not only a checkout) has them. In a checkout the top-level
`recipes` folder is a link to this one, so `--recipe recipes/passkey.yaml` names the same files from the repo root.

`--recipe` takes a path or a shipped recipe's name: `passkey`, `passkey.yaml` and `recipes/passkey.yaml` all mean
the shipped file when no such file exists where the command runs. An existing file always wins, so an edited copy
is never shadowed by the shipped one.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["RECIPES_DIR", "resolve_recipe", "shipped_recipes"]

RECIPES_DIR = Path(__file__).resolve().parent


def shipped_recipes() -> list[str]:
    """Names of the shipped recipes (file stems), sorted."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def resolve_recipe(spec: str | Path) -> Path:
    """The file a `--recipe` value means: the path itself if it exists, else the shipped recipe of that name.

    A value that is neither comes back unchanged, for the recipe loader to report as not found.
    """
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    parts = path.parts
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "recipes"):
        name = parts[-1][:-len(".yaml")] if parts[-1].endswith(".yaml") else parts[-1]
        shipped = RECIPES_DIR / f"{name}.yaml"
        if shipped.is_file():
            return shipped
    return path
