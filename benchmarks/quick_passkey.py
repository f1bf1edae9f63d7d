"""Quick passkey check of the default teacher and a student run, side by side (results.json + table + chart).

    python benchmarks/quick_passkey.py --student runs/pk --lengths 1024,2048,4096,8192,16384 --n 10 --out out/
"""
import argparse

import torch

from lawcat import LawcatForCausalLM, load_teacher
from lawcat.eval.compare import compare
from lawcat.eval.runner import run_eval


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True)
    ap.add_argument("--lengths", default="1024,2048,4096,8192,16384")
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    lengths = [int(x) for x in a.lengths.split(",")]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else None
    teacher, tok = load_teacher("default", dtype=dtype, device=device)
    student = LawcatForCausalLM.from_pretrained(a.student, dtype=dtype, device=device)
    run_eval(student, tok, "lawcat", "passkey", lengths, a.n, f"{a.out}/student", batch_size=a.batch_size)
    run_eval(teacher, tok, "teacher", "passkey", lengths, a.n, f"{a.out}/teacher", batch_size=a.batch_size)
    compare([f"{a.out}/teacher", f"{a.out}/student"], f"{a.out}/compare")


if __name__ == "__main__":
    main()
