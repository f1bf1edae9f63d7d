#!/usr/bin/env bash
# GPU call: the CUDA tests, fla parity on GPU 0 and the Triton kernel on GPU 1 (one after the other on a one-GPU
# machine), logs under $OUT. Also the first half of the teacher transfer: leaves ~/stage/part00 (carry .stage1)
# and the unpacked wheels in /tmp/site (carry .whl) for the next call on the same machine.
#   bash benchmarks/gpu/call_tests.sh [timeout per test file in s, default 200]
set -uo pipefail
LIMIT=${1:-200}
mkdir -p ~/stage && cp .stage1/part00 ~/stage/
source benchmarks/gpu/unpack_wheels.sh
NGPU=$(python3 -c "import torch; print(torch.cuda.device_count())")
run_tests() {  # gpu file log
  CUDA_VISIBLE_DEVICES=$1 timeout $LIMIT python3 -m pytest -q -s -p no:cacheprovider -m cuda $2 > $OUT/$3 2>&1
  echo "pytest exit $?" >> $OUT/$3
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
run_tests $(( NGPU > 1 ? 1 : 0 )) tests/ops/test_triton_norm_gla.py gpu_tests_triton.log &
[ "$NGPU" -gt 1 ] || wait
run_tests 0 tests/ops/test_fla_parity.py gpu_tests_fla.log
wait
tail -12 $OUT/gpu_tests_fla.log; tail -6 $OUT/gpu_tests_triton.log
