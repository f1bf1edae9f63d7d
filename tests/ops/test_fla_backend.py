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
