#!/usr/bin/env bash
# A short GPU call (carry .whl and .stage1: the tokenizer, and teacher part 00 kept in ~/stage): lawcat's Triton GLA
# kernel after a change, in order of
# what matters: its CUDA tests against the float64 recurrence (and the fused conv + feature map, and the decode graph
# that runs both), its timing beside fla's chunk_gla (pinned configs) and
# SDPA FlashAttention, and stage 1 replayed from a CUDA graph on it, at initial and at trained-like gates.
#   bash benchmarks/gpu/call_kernel_check.sh          # logs and JSON under $OUT
set -uo pipefail
source benchmarks/gpu/keep_parts.sh > /dev/null   # the teacher part this call carries, kept for a later call
source benchmarks/gpu/unpack_wheels.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
mkdir -p /tmp/tok && tar xJf .stage1/tok.tar.xz -C /tmp/tok
timeout ${KERNEL_TEST_LIMIT:-200} python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/ops/test_triton_norm_gla.py \
  tests/ops/test_triton_front.py tests/models/test_graph_decode.py > $OUT/kernel_tests.log 2>&1
echo "pytest exit $?" >> $OUT/kernel_tests.log
grep -hE "norm_gla|passed|failed|Error|exit" $OUT/kernel_tests.log | tail -14
timeout ${KERNEL_BENCH_LIMIT:-80} python3 benchmarks/bench_norm_gla.py $OUT/bench_norm_gla.json --methods ours,fla64,fla65,flash \
  --fla-configs pinned --T ${BENCH_T:-1024,16384,131072} --check-T 0 --time-budget 60 > $OUT/bench_norm_gla.log 2>&1
echo "bench exit $?" >> $OUT/bench_norm_gla.log
tail -8 $OUT/bench_norm_gla.log
for gate in "" -300; do
  timeout ${THROUGHPUT_LIMIT:-50} python3 benchmarks/stage1_throughput.py --teacher random:smollm2-135m --tokenizer /tmp/tok \
    --length 1162 --batch-size 8 --steps 20 --gla-backends triton --layer-groups 0 --cuda-graph on \
    ${gate:+--gate-logit $gate} --out $OUT/throughput${gate}.json > $OUT/throughput${gate}.log 2>&1
  echo "throughput exit $?" >> $OUT/throughput${gate}.log
  [ -z "$gate" ] && cp $OUT/throughput.json ~/stage/ 2>/dev/null   # what a grid on this machine plans its steps with
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('gate', d['gate_logit'], {k: v.get('s_per_step', v) for k, v in d['by_backend'].items()})" $OUT/throughput${gate}.json || tail -5 $OUT/throughput${gate}.log
done
timeout ${GRAPH_TEST_LIMIT:-60} python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/distill/test_stage1_graph.py \
  -k strong_gates > $OUT/graph_strong_test.log 2>&1; echo "pytest exit $?" >> $OUT/graph_strong_test.log
tail -2 $OUT/graph_strong_test.log
