"""Steps of each stage that fit a wall-clock box, from a measured throughput file (stage1_throughput.py).

    python benchmarks/gpu/plan_steps.py t.json --stage1-seconds 150 --stage2-seconds 170 --cap 5000
    -> "900 520"   (stage-1 steps, stage-2 steps)
    ... --slowdown 2.5    # several trainings share the GPU: each step is expected to take 2.5x as long
    ... --slowdown 4,1.8  # per stage (stage 1, stage 2)
    ... --backend best    -> "900 520 triton"   (the measured GLA backend with the fastest stage-1 + stage-2 step)
    ... --backend best --stage1-variant /graph    (stage 1 as replayed from CUDA graphs: "<backend>/group0/graph")
    ... --stage2-graph                             (stage 2 as replayed from CUDA graphs: "stage2_graph")

The measured seconds per step are of the bare step; a training step also moves the batch, logs and checkpoints,
hence the safety factor. Used by the GPU call scripts to time-box a recipe without guessing its speed.
"""
import argparse
import json


def plan(s_per_step: dict, stage1_seconds: float, stage2_seconds: float, cap: int, safety: float = 0.8,
         slowdown=(1.0, 1.0)):
    steps = []
    for stage, seconds, factor in (("stage1", stage1_seconds, slowdown[0]), ("stage2", stage2_seconds, slowdown[1])):
        steps.append(max(1, min(cap, int(seconds * safety / (s_per_step[stage] * factor)))))
    return steps


def slowdowns(text: str) -> tuple:
    """"2.5" (both stages) or "4,1.8" (stage 1, stage 2): a step replayed from a CUDA graph is bound by the GPU,
    so sharing the GPU slows it by about the number of trainings, while an eager step is bound by its own CPU."""
    parts = [float(x) for x in text.split(",")]
    if len(parts) not in (1, 2) or min(parts) <= 0:
        raise SystemExit(f"--slowdown takes one or two positive numbers, got {text!r}")
    return (parts[0], parts[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("throughput_json")
    ap.add_argument("--stage1-seconds", type=float, required=True)
    ap.add_argument("--stage2-seconds", type=float, required=True)
    ap.add_argument("--cap", type=int, required=True, help="at most this many steps per stage (the recipe's own)")
    ap.add_argument("--slowdown", type=slowdowns, default=(1.0, 1.0),
                    help="expected step-time factor from sharing the GPU: one number, or stage 1,stage 2")
    ap.add_argument("--backend", default=None,
                    help="time steps of this GLA backend (by_backend) instead of the headline; 'best' picks the "
                         "fastest measured one and prints its name after the step counts")
    ap.add_argument("--stage1-variant", default="", help="suffix of the stage-1 entries to plan with (/graph)")
    ap.add_argument("--stage2-graph", action="store_true", help="plan stage 2 with its CUDA-graph timing")
    a = ap.parse_args()
    data = json.load(open(a.throughput_json))
    if not a.backend:
        print(*plan(data["s_per_step"], a.stage1_seconds, a.stage2_seconds, a.cap, slowdown=a.slowdown))
        return
    by = data["by_backend"]
    s1 = "/group0" + a.stage1_variant
    s2 = "stage2_graph" if a.stage2_graph else "stage2"
    per_backend = {b: {"stage1": by[b + s1]["s_per_step"]["stage1"], "stage2": by[b]["s_per_step"][s2]}
                   for b in by if "/" not in b and "s_per_step" in by.get(b + s1, {}) and s2 in by[b]["s_per_step"]}
    if not per_backend or (a.backend != "best" and a.backend not in per_backend):
        raise SystemExit(f"{a.throughput_json} has no timed stage-1 entry '<backend>{s1}' with its {s2} timing for "
                         f"backend {a.backend!r} (timed: {', '.join(sorted(by))})")
    backend = min(per_backend, key=lambda b: sum(per_backend[b].values())) if a.backend == "best" else a.backend
    steps = plan(per_backend[backend], a.stage1_seconds, a.stage2_seconds, a.cap, slowdown=a.slowdown)
    print(*steps, *([backend] if a.backend == "best" else []))


if __name__ == "__main__":
    main()
