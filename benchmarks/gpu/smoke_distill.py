"""A short real `distill()` on a random-weight teacher of the default's shape, before a long GPU run: it exercises
the recipe's whole path (data, both stages, CUDA graphs, validation, best-weight restore, save) and reports the
seconds per step of each stage, which size the long run. No GGUF needed: the tokenizer comes from a folder.

    python benchmarks/gpu/smoke_distill.py --tokenizer /tmp/tok --recipe recipes/passkey.yaml --out /tmp/smoke \
        stage1.max_steps=40 stage2.max_steps=40 stage1.cuda_graph=true stage2.cuda_graph=true
"""
import argparse
import json
import sys

from lawcat import load_teacher
from lawcat.distill.recipe import load_recipe
from lawcat.distill.run import distill


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", default="random:smollm2-135m")
    ap.add_argument("--tokenizer", required=True, help="tokenizer folder for the random teacher")
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args(argv)
    recipe = load_recipe(a.recipe, a.overrides)
    teacher, tok = load_teacher(a.teacher, tokenizer_dir=a.tokenizer, device="cuda")
    summary = distill(recipe, a.teacher, a.out, teacher=teacher, tokenizer=tok)
    for stage in ("stage1", "stage2"):
        st = summary.get(stage)
        if st:
            st["s_per_step"] = st["elapsed_s"] / max(1, st["steps"])
            print(f"SMOKE {stage}: {st['steps']} steps, {st['s_per_step']:.4f} s/step, "
                  f"{st['tokens_per_s']:,.0f} tok/s, "
                  f"best val {st['best_val']} at step {st['best_step']}, restored {st['restored_best']}")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
