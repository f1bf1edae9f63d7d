"""The fast CUDA path through fla's Triton kernels (package `fla-core`, pinned in the `cuda` extra).

Imported only when tensors live on a CUDA device, so CPU installs never need fla. The normalizer rides along as
a ones column on v (V + 1 wide): one kernel call gives numerator and denominator (docs/method.md, Eq. 8).
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import torch

SHIPPED_CONFIGS = Path(__file__).parent / "fla_configs"


def use_shipped_configs() -> str | None:
    """Point fla at the kernel launch configs lawcat ships for this GPU model, if any (set before fla's import).

    fla autotunes every Triton kernel on first use: minutes on a fresh machine. The shipped configs are what its
    autotuner chose on that GPU (benchmarks/gpu/dump_fla_configs.py); strict mode uses one only for the exact
    autotune key it was tuned for and autotunes anything else as usual. A user's own FLA_CONFIG_DIR wins."""
    if "FLA_CONFIG_DIR" in os.environ or not torch.cuda.is_available():
        return None
    gpu = re.sub(r"[^0-9A-Za-z]+", "_", torch.cuda.get_device_name(0)).strip("_")
    folder = SHIPPED_CONFIGS / gpu
    if not folder.is_dir():
        return None
    os.environ["FLA_CONFIG_DIR"] = str(folder)
    os.environ.setdefault("FLA_CACHE_MODE", "strict")
    return str(folder)


def _config_preference(config) -> tuple:
    """Lower is preferred: 4 warps, 2 pipeline stages, tiles nearest 64 (the larger on ties)."""
    tiles = [v for k, v in config.kwargs.items() if k.startswith("B") and isinstance(v, int)]
    return (abs(config.num_warps - 4), abs(config.num_stages - 2), sum(abs(t - 64) for t in tiles), -sum(tiles))


def _autotuner(obj, depth: int = 0):
    """The triton Autotuner inside obj (fla stacks triton.heuristics on top of it; each wrapper has .fn)."""
    from triton.runtime.autotuner import Autotuner

    if isinstance(obj, Autotuner):
        return obj
    inner = getattr(obj, "fn", None)
    return _autotuner(inner, depth + 1) if inner is not None and depth < 4 else None


def pin_autotuners(modules) -> dict[str, int]:
    """Cut every autotuned kernel in `modules` down to one config of its own candidate list (_config_preference).

    fla 0.6.0 autotunes each chunk kernel over up to 48 configs on first use: on a fresh H200 that outlasted a
    10-minute GPU command three leases running (results/gpu/README.md), and it recurs on every new machine.
    Triton runs a one-config autotuner without benchmarking. The config is a valid one (fla lists it), not the
    tuned best; what that costs in kernel speed against tuned configs is not measured yet (LAWCAT_FLA_AUTOTUNE=1
    for figures that compare against fla). Returns {kernel: candidates it had}."""
    pinned = {}
    for module in modules:
        for obj in list(vars(module).values()):
            tuner = _autotuner(obj)
            if tuner is None or len(tuner.configs) <= 1:
                continue
            name = getattr(getattr(tuner, "base_fn", None), "__name__", None) or repr(tuner.fn)
            pinned[name] = len(tuner.configs)
            tuner.configs = [min(tuner.configs, key=_config_preference)]
    return pinned


@functools.lru_cache(maxsize=1)
def _fla():
    shipped = use_shipped_configs()
    try:
        from fla.ops.gla import chunk_gla, fused_recurrent_gla
    except ImportError as e:  # one clear sentence, with the fix
        raise ImportError(
            "lawcat's CUDA path needs fla-core: install it with `pip install 'lawcat[cuda]'` "
            "(or `pip install fla-core==0.6.0`), or run on CPU tensors to use the reference ops."
        ) from e
    # Tuned configs shipped for this GPU, or LAWCAT_FLA_AUTOTUNE=1 (e.g. for speed measurements): fla autotunes
    # as it likes. Otherwise every kernel behind chunk_gla / fused_recurrent_gla runs one fixed config.
    if shipped is None and os.environ.get("LAWCAT_FLA_AUTOTUNE", "0") != "1":
        import sys

        pin_autotuners([m for n, m in list(sys.modules.items()) if n.startswith("fla.ops.") and m is not None])
    return chunk_gla, fused_recurrent_gla


# torch.compile treats the GLA kernels as opaque calls (a graph break): they are hand-written Triton already,
# and tracing into fla's autotuned launchers only costs compile time.
@torch.compiler.disable
def gla_chunk_fla(q, k, v_aug, g, scale: float, initial_state=None):
    chunk_gla, _ = _fla()
    if initial_state is not None:
        initial_state = initial_state.float()  # fla asserts an fp32 state
    out, state = chunk_gla(q, k, v_aug, g, scale=scale, initial_state=initial_state, output_final_state=True)
    return out, state


@torch.compiler.disable
def gla_step_fla(q, k, v_aug, g, scale: float, state):
    _, fused_recurrent_gla = _fla()
    if state is not None:
        state = state.float()
    # The gate keyword is `gk` here (it is `g` in chunk_gla); fla-notes.md pitfall.
    out, state = fused_recurrent_gla(q, k, v_aug, gk=g, scale=scale, initial_state=state, output_final_state=True)
    return out, state
