#!/usr/bin/env bash
# GPU call 1 of a session (carry .whl and .stage1; no teacher needed yet). Two jobs side by side:
#   GPU 0: the CUDA tests (fla path == reference, the Triton normalized GLA kernel, the student on CUDA == CPU)
#   GPU 1 (or GPU 0 after the tests on a one-GPU machine): `lawcat bench` on the Llama-3.2-1B shape
# and keeps the first teacher part in ~/stage for the call that assembles the teacher.
#   bash benchmarks/gpu/call1_tests_and_bench.sh [bench time budget in s, default 300]
set -uo pipefail
BUDGET=${1:-300}
source benchmarks/gpu/keep_parts.sh > /dev/null
source benchmarks/gpu/unpack_wheels.sh
R=/tmp/call1; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $R/gpu.txt
python3 -c "import torch, triton, transformers, fla; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__, 'fla', fla.__version__, 'gpus', torch.cuda.device_count())" | tee -a $R/gpu.txt
NGPU=$(python3 -c "import torch; print(torch.cuda.device_count())")
BENCH_GPU=$(( NGPU > 1 ? 1 : 0 ))
(
  CUDA_VISIBLE_DEVICES=0 timeout 420 python3 -m pytest -q -s -p no:cacheprovider -m cuda \
    tests/ops/test_fla_parity.py tests/ops/test_triton_norm_gla.py > $R/gpu_tests.log 2>&1
  echo "pytest exit $?" >> $R/gpu_tests.log
) &
TESTS=$!
[ "$NGPU" -gt 1 ] || wait $TESTS
CUDA_VISIBLE_DEVICES=$BENCH_GPU timeout $(( BUDGET + 60 )) python3 -m lawcat.cli bench llama-3.2-1b \
  --what prefill,decode,op,matmul --lengths 1k..128k --decode-contexts 1k,4k,16k,32k,64k \
  --time-budget $BUDGET --out $R/bench > $R/bench.log 2>&1
echo "bench exit $?" >> $R/bench.log
wait $TESTS
tail -5 $R/gpu_tests.log; tail -3 $R/bench.log
tar czf $OUT/call1.tar.gz -C /tmp call1
