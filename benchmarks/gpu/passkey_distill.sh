#!/usr/bin/env bash
# The passkey recipe on the lent GPU, then a quick passkey check of teacher and student. Call 2 of the
# three-call GGUF transfer (split_teacher.sh): parts 00 and 01 wait in ~/stage; this one carries .stage3 and .whl.
#   bash benchmarks/gpu/passkey_distill.sh [recipe overrides...]
set -uo pipefail
source benchmarks/gpu/stage_teacher.sh
R=/tmp/results; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $R/gpu.txt
timeout 90 python3 benchmarks/stage1_throughput.py --length 1162 --batch-size 8 --steps 20 --out $R/stage1_throughput.json
timeout 330 python3 -m lawcat.cli distill --recipe recipes/passkey.yaml --teacher default --out /tmp/pk "$@" 2>&1 \
  | tr '\r' '\n' | grep -v "it/s\]$" | tail -40
cp /tmp/pk/{config.json,model.safetensors,log.jsonl,summary.json,recipe.yaml} $R/ 2>/dev/null
timeout 140 python3 benchmarks/quick_passkey.py --student /tmp/pk --lengths 1024,2048,4096,8192,16384 --n 10 --out $R/eval
tar czf $OUT/passkey_run.tar.gz -C /tmp results
ls -la $R $R/eval
