"""`lawcat bench` argument handling that needs no measurement."""
import os

import pytest
import torch

from lawcat.bench.cli import build_parser, cmd_bench
from lawcat.bench.harness import BenchError


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
def test_fla_autotune_flag_sets_the_switch_fla_backend_reads(monkeypatch, tmp_path):
    monkeypatch.setenv("LAWCAT_FLA_AUTOTUNE", "0")  # recorded, so the flag's value is undone after the test
    args = build_parser().parse_args(["llama-3.2-1b", "--fla-autotune", "--device", "cuda", "--out", str(tmp_path)])
    with pytest.raises(BenchError, match="no CUDA device"):
        cmd_bench(args)
    assert os.environ["LAWCAT_FLA_AUTOTUNE"] == "1"
