"""How long a student's gates remember: per (layer, head, key dim) half-lives on a real passkey prompt, and how
much of the needle's contribution to the state survives until the question.

    python benchmarks/gate_memory.py --model passkey-smollm2 --length 8192 --out results/passkey/h200-run1/gate_memory

Issue 6 asks why a student misses its passkey targets. The state S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t keeps
the needle's term only as far as exp(sum of g after the needle) allows, per key dimension: a head can read the
needle at distance d only through dimensions whose summed decay over d tokens is not far below zero.
Writes gate_memory.json (summaries; no per-sample text) and gate_memory.png (half-life histogram; per layer, the
share of key dimensions that still hold the needle). CPU is fine (one prefill).
"""
import argparse
import json
import math
from pathlib import Path

import torch

from lawcat import LawcatForCausalLM, load_teacher
from lawcat.data import make_samples

HALF_LIFE_MARKS = (64, 1024, 8192, 16384, 32768)


def needle_token_index(tok, prompt: str, char_start: int) -> int:
    return len(tok(prompt[:char_start], add_special_tokens=False)["input_ids"])


def capture_gates(student, ids: torch.Tensor, chunk: int) -> list[torch.Tensor]:
    """Every layer's log-space gate g [T, H, K] (float32) over a chunked prefill of ids [1, T]."""
    per_layer = [[] for _ in student.model.layers]
    hooks = [layer.self_attn.gate.register_forward_hook(
        lambda _m, _i, out, i=i: per_layer[i].append(out[0].detach().float()))
        for i, layer in enumerate(student.model.layers)]
    try:
        with torch.no_grad():
            student.prefill(ids, chunk_size=chunk)
    finally:
        for h in hooks:
            h.remove()
    return [torch.cat(chunks, dim=0) for chunks in per_layer]


def summarize(gates: list[torch.Tensor], needle: int) -> dict:
    layers = []
    all_half_lives = []
    for g in gates:                                    # [T, H, K]
        mean_g = g.mean(dim=0).clamp(max=-1e-12)       # per (head, dim)
        half_life = math.log(2) / (-mean_g)            # tokens until a stored key's weight halves
        after = g[needle + 1:].sum(dim=0)              # log-retention of the needle's term at the last token
        best_per_head = after.max(dim=-1).values       # the head's best-remembering dimension
        # Crowding: every earlier token's term survives as exp(sum of g after it); relative to the needle's, their
        # total says how many needle-sized terms share a dimension (gates only; the keys' feature values weight it
        # further). A dimension that keeps the needle but also ~T other tokens dilutes it ~T-fold.
        suffix = torch.flip(torch.cumsum(torch.flip(g, [0]), 0), [0]) - g  # sum of g after each token
        crowd = torch.logsumexp(suffix.double(), dim=0) - after.double()    # log of (total retained / needle's)
        crowd_best = crowd.min().exp().item()
        layers.append({"half_life_median": half_life.median().item(), "half_life_max": half_life.max().item(),
                       "needle_log_retention_best": after.max().item(),
                       "needle_log_retention_best_per_head": best_per_head.tolist(),
                       "heads_retaining_1pct": int((best_per_head > math.log(0.01)).sum()),
                       "needle_crowding_best_dim": crowd_best,
                       "needle_crowding_in_best_retaining_dim": crowd.flatten()[after.flatten().argmax()].exp().item(),
                       "share_of_dims_with_half_life_over_needle_distance":
                           (half_life > g.shape[0] - 1 - needle).float().mean().item()})
        all_half_lives.append(half_life.flatten())
    hl = torch.cat(all_half_lives)
    return {"layers": layers, "dims": int(hl.numel()),
            "share_of_dims_with_half_life_at_least": {str(m): (hl >= m).float().mean().item() for m in HALF_LIFE_MARKS},
            "half_life_quantiles": {str(q): hl.quantile(q).item() for q in (0.5, 0.9, 0.99, 1.0)},
            "half_lives": hl.tolist()}


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    hl = torch.tensor(summary["half_lives"]).clamp(min=1).log10()
    a.hist(hl.numpy(), bins=60, color="#4477aa")
    for m in HALF_LIFE_MARKS[1:]:
        a.axvline(math.log10(m), color="#999", lw=0.8, ls="--")
        a.text(math.log10(m), a.get_ylim()[1] * 0.95, f"{m // 1024}K", ha="center", fontsize=8)
    a.set_xlabel("log10 half-life (tokens) of a key dimension")
    a.set_ylabel("key dimensions (all layers and heads)")
    a.set_title("gate memory per key dimension")
    share = [100 * layer["share_of_dims_with_half_life_over_needle_distance"] for layer in summary["layers"]]
    b.bar(range(len(share)), share, color="#cc6677")
    b.set_xlabel("layer")
    b.set_ylabel("% of key dims with half-life > distance")
    b.set_title(f"dims that can still hold a needle {summary['needle_distance']} tokens back")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="passkey-smollm2", help="a lawcat run directory or shipped name")
    ap.add_argument("--length", type=int, default=8192)
    ap.add_argument("--depth", type=float, default=10.0, help="needle depth in percent (10: far from the question)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    student = LawcatForCausalLM.from_pretrained(a.model)
    _, tok = load_teacher(student.config.teacher_source or "default")  # the tokenizer the student reads with
    sample = make_samples("passkey", tok, a.length, 1, seed=a.seed, depth=a.depth)[0]
    ids = tok(sample.prompt, return_tensors="pt")["input_ids"]
    needle = needle_token_index(tok, sample.prompt, sample.meta["needle_char_span"][0])
    gates = capture_gates(student, ids, a.chunk)
    summary = summarize(gates, needle)
    summary.update(model=a.model, length=int(ids.shape[1]), needle_token=needle,
                   needle_distance=int(ids.shape[1]) - 1 - needle, depth=a.depth, seed=a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(summary, out / "gate_memory.png", f"{a.model}: gates on a {ids.shape[1]}-token passkey prompt")
    summary.pop("half_lives")
    (out / "gate_memory.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "layers"}, indent=1))
    for i, layer in enumerate(summary["layers"]):
        print(f"layer {i:2d}: half-life median {layer['half_life_median']:8.1f}  max {layer['half_life_max']:10.1f}  "
              f"needle log10 retention (best dim) {layer['needle_log_retention_best'] / math.log(10):8.2f}  "
              f"heads >= 1% {layer['heads_retaining_1pct']}  crowding: least {layer['needle_crowding_best_dim']:8.1f}"
              f"  in the best-retaining dim {layer['needle_crowding_in_best_retaining_dim']:8.1f}")


if __name__ == "__main__":
    main()
