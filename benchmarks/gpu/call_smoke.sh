#!/usr/bin/env bash
# GPU call 1 of a training lease (carry .whl and .stage1): keeps teacher part 00, then runs the recipe's whole path
# briefly on a random-weight teacher of the default's shape at each batch size in BATCHES (CUDA graphs, the Triton
# GLA kernel, validation and best-weight restore included), so a long run starts only on a path that works, and its
# step times size it. Logs under $OUT.
#   RECIPE=recipes/passkey.yaml BATCHES="8 16" bash benchmarks/gpu/call_smoke.sh
set -uo pipefail
source benchmarks/gpu/first_call.sh
for b in ${BATCHES:-8 16}; do
  timeout ${SMOKE_LIMIT:-200} python3 benchmarks/gpu/smoke_distill.py --tokenizer /tmp/tok --recipe ${RECIPE:-recipes/passkey.yaml} \
    --out /tmp/smoke$b data.n_train=$(( 60 * b )) data.n_val=$(( 2 * b )) stage1.max_steps=60 stage2.max_steps=60 \
    stage1.eval_every=20 stage2.eval_every=20 stage1.batch_size=$b stage2.batch_size=$b stage1.cuda_graph=true \
    stage2.cuda_graph=true model.gla_backend=triton 2>&1 | tr '\r' '\n' | grep -v "it/s\]$" > $OUT/smoke$b.log
  echo "smoke batch $b exit ${PIPESTATUS[0]}" >> $OUT/smoke$b.log
done
cat $OUT/gpu.txt; grep -hE "^SMOKE|exit|Error|error" $OUT/smoke*.log | tail -20
