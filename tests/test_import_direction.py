"""Imports inside lawcat point one way, so the package reads bottom-up:

    errors  ->  atomic, machine, units, cuda_graphs, recipes, weights  ->  results_file  ->  ops  ->  layers
    ->  models  ->  data  ->  distill, eval, bench, analysis  ->  demo, lm_eval  ->  cli

Every import counts, those inside functions and under TYPE_CHECKING included: an import that runs the other
way only when called is still a loop a reader has to untangle. No module imports the `lawcat` package itself
(its lazy facade is for users; the command line may read its `__version__`), and no two modules of one subpackage
import each other, directly or round about.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lawcat"

LAYERS = [
    {"errors"},
    {"atomic", "machine", "units", "cuda_graphs", "recipes", "weights"},
    {"results_file"},
    {"ops"},
    {"layers"},
    {"models"},
    {"data"},
    {"distill", "eval", "bench", "analysis"},
    {"demo", "lm_eval"},
    {"cli"},
]
RANK = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        parts = f.relative_to(PACKAGE.parent).with_suffix("").parts
        if not all(part.isidentifier() for part in parts):
            continue  # not importable as lawcat code: a shipped student's remote-code loader (weights/<name>/)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def _imports(name: str, file: Path, mods: dict) -> set[str]:
    """The lawcat modules `name` imports (a `from pkg import sub` of a submodule counts as that submodule)."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if {a.name for a in node.names} == {"__version__"}:
                continue  # the version string, not the facade's lazy model exports
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for a in node.names:
                out.add(f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module)
    return {m for m in out if m == "lawcat" or m.startswith("lawcat.")}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def _graph():
    mods = _modules()
    return mods, {m: _imports(m, f, mods) - {m} for m, f in mods.items()}


def test_every_subpackage_has_a_layer():
    mods, _ = _graph()
    parts = {_part(m) for m in mods} - {""}
    assert parts <= set(RANK), f"place these in LAYERS: {sorted(parts - set(RANK))}"


def test_no_module_imports_the_package_facade():
    _, edges = _graph()
    bad = sorted(m for m, targets in edges.items() if "lawcat" in targets and m != "lawcat")
    assert not bad, f"import from the defining module instead of `lawcat`: {bad}"


def test_imports_point_down_the_layers():
    _, edges = _graph()
    bad = []
    for m, targets in edges.items():
        if m == "lawcat":
            continue
        for t in targets:
            if t == "lawcat" or _part(m) == _part(t):
                continue
            if RANK[_part(t)] >= RANK[_part(m)]:
                bad.append(f"{m} -> {t}")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def test_no_import_cycles_within_a_subpackage():
    _, edges = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, "modules that import each other: " + "; ".join(" <-> ".join(c) for c in cycles)
