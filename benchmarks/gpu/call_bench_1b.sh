#!/usr/bin/env bash
# GPU call (carry .whl; no teacher needed): issue 5's figures on the Llama-3.2-1B shape (random weights), the student
# with lawcat's Triton GLA kernel and its decode step replayed from a CUDA graph, the teacher with its best SDPA
# backend and its decode over a static KV cache replayed from a CUDA graph too (--teacher-decode-graph), in one run: prefill 1K-128K, decode at 1K-32K contexts, the attention operators, the bf16 matmul rate.
#   BUDGET=400 bash benchmarks/gpu/call_bench_1b.sh           # writes $OUT/bench (JSON, markdown, PNGs)
# then a profile of the student's prefill at 16K (benchmarks/profile_prefill.py) and (LONG=0 skips it) the student
# alone at 256K and 1M tokens: $OUT/bench_1m
set -uo pipefail
BUDGET=${BUDGET:-400}
source benchmarks/gpu/unpack_wheels.sh
mkdir -p $OUT/bench
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/bench/gpu.txt
python3 -c "import torch, triton, transformers, fla; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__, 'fla', fla.__version__)" >> $OUT/bench/gpu.txt
timeout $(( BUDGET + 90 )) python3 -m lawcat.cli bench llama-3.2-1b --gla-backend ${GLA:-triton} --decode-graph --teacher-decode-graph \
  --what prefill,decode,op,matmul --lengths ${LENGTHS:-1k..128k} --decode-contexts ${CONTEXTS:-1k,4k,16k,32k} \
  --time-budget $BUDGET --out $OUT/bench > $OUT/bench/bench.log 2>&1
echo "bench exit $?" >> $OUT/bench/bench.log
tail -60 $OUT/bench/bench.log
# the same student prefill without the fused conv + feature map (lawcat.ops.triton_front), for its share
mkdir -p $OUT/bench_unfused
LAWCAT_FUSED_FRONT=0 timeout 150 python3 -m lawcat.cli bench llama-3.2-1b --gla-backend ${GLA:-triton} --models student \
  --what prefill --lengths 4k,16k,64k --time-budget 100 --out $OUT/bench_unfused > $OUT/bench_unfused/bench.log 2>&1
echo "bench unfused exit $?" >> $OUT/bench_unfused/bench.log
# where the student's prefill time goes at 16K (issue 5: every miss explained with a profile)
timeout 150 python3 benchmarks/profile_prefill.py llama-3.2-1b --length 16384 --gla-backend ${GLA:-triton} \
  --out $OUT/bench/profile_prefill_16k.json > $OUT/bench/profile_prefill_16k.log 2>&1
echo "profile exit $?" >> $OUT/bench/profile_prefill_16k.log
tail -8 $OUT/bench/profile_prefill_16k.log
# issue 5's constant-memory chunked prefill at 1M tokens, the student alone (the teacher's KV cache would not fit)
if [ "${LONG:-1}" = 1 ]; then
  mkdir -p $OUT/bench_1m
  timeout 200 python3 -m lawcat.cli bench llama-3.2-1b --gla-backend ${GLA:-triton} --models student --what prefill \
    --lengths 256k,1m --repeats 2 --warmup 1 --time-budget 150 --out $OUT/bench_1m > $OUT/bench_1m/bench.log 2>&1
  echo "bench 1m exit $?" >> $OUT/bench_1m/bench.log
  tail -15 $OUT/bench_1m/bench.log
fi
