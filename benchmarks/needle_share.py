"""How much of each head's normalized readout comes from the needle, at the position that must name the passkey.

    python benchmarks/needle_share.py --models runs/a,runs/b --length 8192 --out results/passkey/<run>/needle_share

LAWCAT's output at query t is sum_s w_s v_s / sum_s w_s with w_s = sum_d phi(q_t)_d phi(k_s)_d exp(G_t,d - G_s,d)
(Eq. 8; G the cumulative log gate). For the prompt's last token (its logits give the answer's first token) this
script takes every layer's and head's weights w_s and reports the needle tokens' share of them: the quantity
benchmarks/gate_memory.py could only bound from the gates (a needle kept by the gates is still diluted ~T-fold
unless the features single it out). Several models on the same prompt make one chart, e.g. the seeds of one
recipe whose passkey scores differ. CPU is fine (one forward per model).
"""
import argparse
import json
import sys
from pathlib import Path

import torch

from lawcat import LawcatForCausalLM, load_teacher
from lawcat.data import make_samples
from lawcat.layers import attention as attention_module

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gate_memory import needle_token_index  # noqa: E402  (the same folder)


def needle_share(fq: torch.Tensor, fk: torch.Tensor, g: torch.Tensor, needle: range, query: int) -> torch.Tensor:
    """fq, fk [T, H, K] (feature-mapped), g [T, H, K] log gates; returns [H]: the needle rows' share of query's
    normalized linear-attention weights (Eq. 8's numerator weights, the denominator their sum)."""
    G = torch.cumsum(g[: query + 1].double(), dim=0)                           # [t, H, K]
    decay = (G[query][None] - G).exp()                                          # exp(G_query - G_s), s <= query
    w = torch.einsum("shk,shk,hk->sh", fk[: query + 1].double(), decay, fq[query].double())  # [s, H]
    return w[needle.start:needle.stop].sum(0) / w.sum(0).clamp_min(1e-300)


def capture_features(student, ids: torch.Tensor) -> list[tuple]:
    """Every layer's (fq, fk, g) [T, H, K] of one prompt, taken where the layer hands them to the GLA kernel."""
    captured = []
    original = attention_module.normalized_gla

    def recording(q, k, v, g, *args, **kwargs):
        captured.append((q[0].detach().float(), k[0].detach().float(), g[0].detach().float()))
        return original(q, k, v, g, *args, **kwargs)

    attention_module.normalized_gla = recording
    try:
        with torch.no_grad():
            student(input_ids=ids, use_cache=False, logits_to_keep=1)
    finally:
        attention_module.normalized_gla = original
    if len(captured) != len(student.model.layers):
        raise SystemExit(f"captured {len(captured)} GLA calls for {len(student.model.layers)} layers: this script "
                         "reads the window-free LAWCAT path only")
    return captured


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4))
    names = list(results["models"])
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        best = [layer["best_head_share"] for layer in results["models"][name]["layers"]]
        ax.bar([l + i * width for l in range(len(best))], [100 * b for b in best], width, label=name)
    ax.axhline(100 * results["uniform_share"], color="#444", ls="--", lw=1, label="uniform (needle tokens / T)")
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("needle share of the readout, best head (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True, help="comma list of lawcat run directories or shipped names")
    ap.add_argument("--names", default=None, help="comma list of labels (default: the folder names)")
    ap.add_argument("--length", type=int, default=8192)
    ap.add_argument("--depth", type=float, default=10.0, help="needle depth in percent")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    models = a.models.split(",")
    names = a.names.split(",") if a.names else [Path(m).name for m in models]
    if len(names) != len(models):
        raise SystemExit("--names needs one label per model")
    _, tok = load_teacher("default")
    sample = make_samples("passkey", tok, a.length, 1, seed=a.seed, depth=a.depth)[0]
    ids = tok(sample.prompt, return_tensors="pt")["input_ids"]
    start, end = sample.meta["needle_char_span"]
    needle = range(needle_token_index(tok, sample.prompt, start), needle_token_index(tok, sample.prompt, end))
    query = ids.shape[1] - 1
    results = {"length": int(ids.shape[1]), "needle_tokens": [needle.start, needle.stop], "query": query,
               "uniform_share": len(needle) / ids.shape[1], "depth": a.depth, "seed": a.seed, "models": {}}
    for model, name in zip(models, names):
        # A fresh teacher per student: a student's LoRA wraps its teacher's projections in place.
        student = LawcatForCausalLM.from_pretrained(model).eval()
        layers = []
        for fq, fk, g in capture_features(student, ids):
            share = needle_share(fq, fk, g, needle, query)
            layers.append({"best_head_share": share.max().item(), "mean_head_share": share.mean().item(),
                           "per_head": share.tolist()})
        best = max(l["best_head_share"] for l in layers)
        results["models"][name] = {"model": model, "layers": layers, "best_share_any_layer": best}
        per_layer = " ".join(f"{100 * layer['best_head_share']:.1f}" for layer in layers)
        print(f"{name}: best head share over layers {100 * best:.2f} % (uniform {100 * results['uniform_share']:.3f} %)"
              f"; per layer best: {per_layer}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "needle_share.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "needle_share.png", f"needle share of the readout at the answer position, {results['length']} "
                                            f"tokens, needle at {a.depth:g} % depth")


if __name__ == "__main__":
    main()
