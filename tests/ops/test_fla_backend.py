"""Pointing fla at lawcat's shipped kernel configs (CPU: the CUDA queries are stood in for)."""
import os

import torch

from lawcat.ops import fla_backend


def _fake_gpu(monkeypatch, tmp_path, name="NVIDIA H200"):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)
    monkeypatch.setattr(fla_backend, "SHIPPED_CONFIGS", tmp_path)
    monkeypatch.delenv("FLA_CONFIG_DIR", raising=False)
    monkeypatch.delenv("FLA_CACHE_MODE", raising=False)


def test_shipped_configs_for_this_gpu_are_used_in_strict_mode(monkeypatch, tmp_path):
    _fake_gpu(monkeypatch, tmp_path)
    (tmp_path / "NVIDIA_H200").mkdir()
    assert fla_backend.use_shipped_configs() == str(tmp_path / "NVIDIA_H200")
    assert os.environ["FLA_CONFIG_DIR"] == str(tmp_path / "NVIDIA_H200")
    assert os.environ["FLA_CACHE_MODE"] == "strict"  # exact autotune keys only; anything else still autotunes


def test_no_configs_for_another_gpu_and_a_users_dir_wins(monkeypatch, tmp_path):
    _fake_gpu(monkeypatch, tmp_path, name="NVIDIA A100-SXM4-80GB")
    (tmp_path / "NVIDIA_H200").mkdir()
    assert fla_backend.use_shipped_configs() is None
    assert "FLA_CONFIG_DIR" not in os.environ
    monkeypatch.setenv("FLA_CONFIG_DIR", "/mine")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "NVIDIA H200")
    assert fla_backend.use_shipped_configs() is None and os.environ["FLA_CONFIG_DIR"] == "/mine"


def test_pin_autotuners_keeps_one_of_the_kernels_own_configs():
    """fla's kernels run one fixed config instead of autotuning for minutes (lawcat.ops.fla_backend._fla)."""
    import types

    import pytest

    triton = pytest.importorskip("triton")
    import triton.language as tl

    candidates = [triton.Config({"BK": bk}, num_warps=w, num_stages=s) for bk in (32, 64) for w in (2, 4, 8)
                  for s in (2, 3)]

    @triton.autotune(configs=candidates, key=["n"])
    @triton.jit
    def kernel(x, n, BK: tl.constexpr):
        pass

    @triton.autotune(configs=candidates[:1], key=["n"])
    @triton.jit
    def single(x, n, BK: tl.constexpr):
        pass

    module = types.ModuleType("fake_fla_ops")
    module.kernel, module.single, module.other = kernel, single, 3
    assert fla_backend.pin_autotuners([module]) == {"kernel": 12}
    (chosen,) = kernel.configs
    assert chosen in candidates and (chosen.kwargs["BK"], chosen.num_warps, chosen.num_stages) == (64, 4, 2)
    assert single.configs == candidates[:1]
