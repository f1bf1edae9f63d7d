"""Where a result was measured: machine, accelerator, library versions and the git commit, for results files.

Timings and accuracies mean little without these, so every bench and eval run records them (run.machine).
Cheap to call: it imports neither torch nor transformers (their versions come from what is loaded, else from the
installed metadata).
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

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
    """Machine, accelerator and library versions, for a results file. `device` (a CUDA device) adds the GPU's
    name, memory and compute capability; without it the CPU is the device."""
    torch = sys.modules.get("torch")
    transformers = sys.modules.get("transformers")
    info = {
        "platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
        "torch": torch.__version__ if torch else _version("torch"),
        "transformers": transformers.__version__ if transformers else _version("transformers"),
        "fla_core": _version("fla-core"), "triton": _version("triton"), "lawcat": _version("lawcat"),
        "git": _git(),
    }
    if torch is not None:
        info.update({"torch_num_threads": torch.get_num_threads(), "cuda_available": torch.cuda.is_available()})
    dev = torch.device(device) if torch is not None and device is not None else None
    if dev is not None and dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update({"device": torch.cuda.get_device_name(dev), "device_total_bytes": props.total_memory,
                     "compute_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version()})
    else:
        info.update({"device": platform.processor() or platform.machine() or "cpu", "device_total_bytes": None})
    return info
