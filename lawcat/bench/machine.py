"""Where a benchmark ran: machine, accelerator, library versions and the git commit, for the results file.

Timings mean little without these, so every run records them (`run_bench` puts them under run.machine).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

__all__ = ["machine_info"]


def _version(dist: str):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def _git() -> dict:
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return {"commit": head or None, "dirty": bool(dirty)}
    except Exception:  # noqa: BLE001 - no git on the machine is fine
        return {"commit": None, "dirty": None}


def machine_info(device=None) -> dict:
    """Machine, accelerator and library versions, for the results file."""
    import transformers

    info = {
        "platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "fla_core": _version("fla-core"), "triton": _version("triton"), "lawcat": _version("lawcat"),
        "torch_num_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available(),
        "git": _git(),
    }
    dev = torch.device(device) if device is not None else None
    if dev is not None and dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update({"device": torch.cuda.get_device_name(dev), "device_total_bytes": props.total_memory,
                     "compute_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version()})
    else:
        info.update({"device": platform.processor() or platform.machine() or "cpu", "device_total_bytes": None})
    return info
