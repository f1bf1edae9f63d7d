"""Write the launch configurations fla's autotuner chose on this GPU as an fla config directory.

fla 0.6.0 autotunes each Triton kernel on first use: on a fresh machine, minutes of compiling and timing before
the first chunk_gla forward and backward finish. fla can instead read the chosen configs from
$FLA_CONFIG_DIR/<kernel>.json (FLA_CACHE_MODE=strict: exact autotune-key matches only, anything else is still
autotuned), and lawcat ships such a directory per GPU model (lawcat/ops/fla_configs/<GPU>/, picked up by
lawcat.ops.fla_backend). This script runs the GLA calls lawcat makes (chunk forward and backward, the decoding
step; head dims 64 and 128; bf16, the dtype of training and GPU evaluation) so every kernel is tuned, then writes
what the autotuners hold.

    python benchmarks/gpu/dump_fla_configs.py --out lawcat/ops/fla_configs     # on the GPU to be covered
"""
import argparse
import gc
import json
import re
from pathlib import Path

import torch


def exercise(head_dims=(64, 128), dtypes=(torch.bfloat16,), device="cuda"):
    from lawcat.ops.gla import gla_augmented

    for K in head_dims:
        for dtype in dtypes:
            for T in (300, 1):
                q, k = (torch.rand(2, T, 4, K, device=device).softmax(-1).to(dtype).requires_grad_() for _ in "qk")
                v = torch.randn(2, T, 4, K + 1, device=device, dtype=dtype, requires_grad=T > 1)
                g = (torch.nn.functional.logsigmoid(torch.randn(2, T, 4, K, device=device)) / 16).requires_grad_()
                out, state = gla_augmented(q, k, v, g, 1.0, torch.zeros(2, 4, K, K + 1, device=device), "fla")
                if T > 1:
                    (out.float().sum() + state.sum()).backward()
    torch.cuda.synchronize()


def dump(out_dir: Path) -> list[str]:
    import triton
    from fla.ops.utils.cache import AutotuneKey, CachedAutotuner

    written = []
    for tuner in (o for o in gc.get_objects() if isinstance(o, CachedAutotuner)):
        if not tuner.cache:
            continue
        entries = {}
        for key, cfg in tuner.cache.items():
            entries[AutotuneKey.key_hash(key)] = {
                "autotune_key": AutotuneKey.normalize_autotune_key(list(key)),
                "config": {"kwargs": dict(cfg.kwargs), "num_warps": cfg.num_warps, "num_stages": cfg.num_stages,
                           "num_ctas": getattr(cfg, "num_ctas", 1), "maxnreg": getattr(cfg, "maxnreg", None)}}
        path = out_dir / f"{tuner.kernel_name}.json"
        old = json.loads(path.read_text())["autotune_entries"] if path.is_file() else {}
        path.write_text(json.dumps({"kernel_name": tuner.kernel_name, "triton_version": triton.__version__,
                                    "autotune_entries": {**old, **entries}}, indent=1, sort_keys=True))
        written.append(path.name)
    return written


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="lawcat/ops/fla_configs")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--dtypes", default="bfloat16", help="comma list; each dtype is a full autotune (minutes)")
    a = ap.parse_args()
    gpu = re.sub(r"[^0-9A-Za-z]+", "_", torch.cuda.get_device_name(0)).strip("_")
    out_dir = Path(a.out) / gpu
    out_dir.mkdir(parents=True, exist_ok=True)
    exercise([int(k) for k in a.head_dims.split(",")], [getattr(torch, d) for d in a.dtypes.split(",")])
    names = dump(out_dir)
    print(f"{len(names)} kernel configs for {gpu} in {out_dir}: {', '.join(sorted(names))}")


if __name__ == "__main__":
    main()
