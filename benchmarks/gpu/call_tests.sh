#!/usr/bin/env bash
# GPU call 1 (carry .whl and .stage1): stage-1 speed part by part and its profile (a random-weight teacher of the
# default's shape: speed does not depend on the weights, and the GGUF is not there yet; .stage1/tok.tar.xz carries
# the default's tokenizer, split_teacher.sh packs it), the CUDA tests (fla, fused stage 1, lawcat's Triton kernel). Also the
# first part of the teacher transfer: keeps ~/stage/teacher.xz.part00 and the unpacked wheels in /tmp/site for
# the next call on the same machine. Logs and fla_configs.tar.gz under $OUT.
#   bash benchmarks/gpu/call_tests.sh [seconds for the fla tests, default 120]  (CUDA_TESTS: the test files;
#   DUMP_FLA=1 and DUMP_LIMIT: tune fla and keep its configs; PARTS_COMPILE=1)
set -uo pipefail
LIMIT=${1:-120}
source benchmarks/gpu/keep_parts.sh > /dev/null
source benchmarks/gpu/unpack_wheels.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)" >> $OUT/gpu.txt
mkdir -p /tmp/tok && tar xJf .stage1/tok.tar.xz -C /tmp/tok
RANDOM_TEACHER="--teacher random:smollm2-135m --tokenizer /tmp/tok"
# torch.compile of the fused side did not finish compiling in ~90 s on 2026-12-01: PARTS_COMPILE=1 to try anyway.
timeout ${PARTS_LIMIT:-90} python3 benchmarks/stage1_parts.py $RANDOM_TEACHER --gla-backends triton,fla \
  $([ "${PARTS_COMPILE:-0}" = 1 ] || echo --no-compile) \
  --out $OUT/stage1_parts.json > $OUT/stage1_parts.log 2>&1; echo "parts exit $?" >> $OUT/stage1_parts.log
timeout 60 python3 benchmarks/profile_stage1.py $RANDOM_TEACHER --gla-backend triton --top 40 \
  --out $OUT/profile_stage1.json > $OUT/profile_stage1.log 2>&1; echo "profile exit $?" >> $OUT/profile_stage1.log
# fla's kernels run one pinned config each (lawcat.ops.fla_backend.pin_autotuners): no autotune on this fresh
# machine. DUMP_FLA=1 tunes them instead (LAWCAT_FLA_AUTOTUNE=1, minutes) and returns what was chosen as
# fla_configs.tar.gz, for lawcat/ops/fla_configs/<GPU>/.
if [ "${DUMP_FLA:-0}" = 1 ]; then
  LAWCAT_FLA_AUTOTUNE=1 timeout ${DUMP_LIMIT:-300} python3 benchmarks/gpu/dump_fla_configs.py --out /tmp/fla_configs \
    > $OUT/fla_configs.log 2>&1; echo "dump exit $?" >> $OUT/fla_configs.log
  tar czf $OUT/fla_configs.tar.gz -C /tmp fla_configs 2>/dev/null
fi
timeout $LIMIT python3 -m pytest -q -s -p no:cacheprovider -m cuda ${CUDA_TESTS:-tests/ops/test_fla_parity.py tests/distill/test_stages.py} \
  > $OUT/gpu_tests_fla.log 2>&1; echo "pytest exit $?" >> $OUT/gpu_tests_fla.log
timeout ${TRITON_LIMIT:-90} python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/ops/test_triton_norm_gla.py \
  > $OUT/gpu_tests_triton.log 2>&1; echo "pytest exit $?" >> $OUT/gpu_tests_triton.log
tail -45 $OUT/profile_stage1.log; grep -E ":|exit" $OUT/stage1_parts.log | head -24; tail -15 $OUT/gpu_tests_fla.log; tail -6 $OUT/gpu_tests_triton.log; cat $OUT/fla_configs.log 2>/dev/null
