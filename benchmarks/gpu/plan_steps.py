"""Steps of each stage that fit a wall-clock box, from a measured throughput file (stage1_throughput.py).

    python benchmarks/gpu/plan_steps.py t.json --stage1-seconds 150 --stage2-seconds 170 --cap 5000
    -> "900 520"   (stage-1 steps, stage-2 steps)

The measured seconds per step are of the bare step; a training step also moves the batch, logs and checkpoints,
hence the safety factor. Used by the GPU call scripts to time-box a recipe without guessing its speed.
"""
import argparse
import json


def plan(s_per_step: dict, stage1_seconds: float, stage2_seconds: float, cap: int, safety: float = 0.8):
    steps = []
    for stage, seconds in (("stage1", stage1_seconds), ("stage2", stage2_seconds)):
        steps.append(max(1, min(cap, int(seconds * safety / s_per_step[stage]))))
    return steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("throughput_json")
    ap.add_argument("--stage1-seconds", type=float, required=True)
    ap.add_argument("--stage2-seconds", type=float, required=True)
    ap.add_argument("--cap", type=int, required=True, help="at most this many steps per stage (the recipe's own)")
    a = ap.parse_args()
    measured = json.load(open(a.throughput_json))["s_per_step"]
    print(*plan(measured, a.stage1_seconds, a.stage2_seconds, a.cap))


if __name__ == "__main__":
    main()
