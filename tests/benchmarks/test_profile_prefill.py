"""benchmarks/profile_prefill.py: how profiled operators are grouped (the figures themselves need a GPU)."""
import importlib.util
import sys
from pathlib import Path

import pytest

# The script imports its sibling benchmarks/profiling.py as `python benchmarks/profile_prefill.py` lets it.
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
_spec = importlib.util.spec_from_file_location("profile_prefill", BENCHMARKS / "profile_prefill.py")
profile_prefill = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profile_prefill)


@pytest.mark.parametrize("name,group", [
    ("aten::mm", "matmul"),
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "matmul"),
    ("nvjet_tst_128x256_64x4_2x1_v_bz_TNT", "matmul"),
    ("chunk_gla_fwd_kernel_o", "gla"),
    ("_fwd_out_kernel", "gla"),
    ("_seg_scan_kernel", "gla"),
    ("aten::softmax", "front"),
    ("_conv_map_kernel", "front"),
    ("aten::_conv_depthwise2d", "front"),
    ("void at::native::elementwise_kernel<128, 2>", "other"),
    ("aten::copy_", "other"),
])
def test_operators_fall_into_their_groups(name, group):
    assert profile_prefill.group_of(name) == group
