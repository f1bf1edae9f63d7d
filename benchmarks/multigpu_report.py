"""Scaling report of distillation runs on 1 and N GPUs (issue 7): tokens/s per GPU, scaling efficiency, peak
memory per GPU, and whether the loss curves of the same global batch agree.

    python benchmarks/multigpu_report.py --pair ddp /tmp/ddp1 /tmp/ddp2 --pair fsdp /tmp/fsdp1 /tmp/fsdp2 --out DIR

Each run dir is a `lawcat distill` output (summary.json, log.jsonl), the first of a pair on one GPU. Writes
multigpu.json, multigpu.md and loss_<name>.png (both runs' training loss per step on one chart).
"""
import argparse
import json
from pathlib import Path


def losses(run: Path, stage: str) -> list[float]:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if r.get("stage") == stage and "loss" in r]


def compare(name: str, one: Path, many: Path) -> dict:
    s1, sn = json.loads((one / "summary.json").read_text()), json.loads((many / "summary.json").read_text())
    world = sn["world_size"]
    out = {"name": name, "gpus": [s1["world_size"], world], "stages": {}}
    for stage in ("stage1", "stage2"):
        if stage not in s1 or stage not in sn:
            continue
        a, b = losses(one, stage), losses(many, stage)
        n = min(len(a), len(b))
        rel = [abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a[:n], b[:n])]
        tok1, tokn = s1[stage]["tokens_per_s"], sn[stage]["tokens_per_s"]
        out["stages"][stage] = {
            "steps": n, "tokens_per_s": [tok1, tokn], "tokens_per_s_per_gpu": [tok1, tokn / world],
            "scaling_efficiency": tokn / (world * tok1), "speedup": tokn / tok1,
            "peak_memory_gib_per_gpu": [s1[stage].get("peak_memory_gib"), sn[stage].get("peak_memory_gib")],
            "loss_first_last": [[a[0], a[n - 1]], [b[0], b[n - 1]]] if n else None,
            "loss_max_rel_diff": max(rel) if rel else None,
            "loss_median_rel_diff": sorted(rel)[len(rel) // 2] if rel else None,
        }
    return out


def plot(name: str, one: Path, many: Path, world: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in ("stage1", "stage2") if losses(one, s)]
    fig, axes = plt.subplots(1, len(stages), figsize=(6 * len(stages), 4), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        ax.plot(losses(one, stage), label="1 GPU", lw=2)
        ax.plot(losses(many, stage), label=f"{world} GPUs", lw=1, ls="--")
        ax.set_title(f"{name}: {stage} training loss, same global batch")
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: list[dict]) -> str:
    lines = ["| run | stage | GPUs | tokens/s | tokens/s per GPU | speedup | scaling eff. | peak GiB per GPU | "
             "loss max rel. diff |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for stage, s in r["stages"].items():
            mem = " / ".join("-" if m is None else f"{m:.1f}" for m in s["peak_memory_gib_per_gpu"])
            lines.append(f"| {r['name']} | {stage} | {r['gpus'][0]} / {r['gpus'][1]} | "
                         f"{s['tokens_per_s'][0]:,.0f} / {s['tokens_per_s'][1]:,.0f} | "
                         f"{s['tokens_per_s_per_gpu'][0]:,.0f} / {s['tokens_per_s_per_gpu'][1]:,.0f} | "
                         f"{s['speedup']:.2f}x | {100 * s['scaling_efficiency']:.0f}% | {mem} | "
                         f"{s['loss_max_rel_diff']:.2e} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pair", nargs=3, action="append", metavar=("NAME", "ONE_GPU_RUN", "N_GPU_RUN"), required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name, one, many in a.pair:
        one, many = Path(one), Path(many)
        if not (one / "summary.json").is_file() or not (many / "summary.json").is_file():
            print(f"{name}: a run did not finish ({one}, {many}); skipped")
            continue
        r = compare(name, one, many)
        results.append(r)
        plot(name, one, many, r["gpus"][1], out / f"loss_{name}.png")
    (out / "multigpu.json").write_text(json.dumps(results, indent=2))
    (out / "multigpu.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
