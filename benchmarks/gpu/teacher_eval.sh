#!/usr/bin/env bash
# The default teacher on every long-context task (issue 4's measurement), on the lent GPU. Call 2 of the GGUF
# transfer (see passkey_distill.sh). Writes results/teacher/<task>/ (results.json, results.md, PNGs).
#   bash benchmarks/gpu/teacher_eval.sh [task ...]
set -uo pipefail
source benchmarks/gpu/stage_teacher.sh
TASKS=${*:-passkey niah1 niah2 niah3 babilong-qa2 babilong-qa3}
for t in $TASKS; do
  case $t in
    babilong*) L=0k,1k,2k,4k,8k,16k,32k; B=25 ;;
    *) L=1k,2k,4k,8k,16k,32k; B=25 ;;
  esac
  python3 -m lawcat.cli eval default --task $t --lengths $L --batch-size $B --name teacher --out /tmp/teacher/$t
done
tar czf $OUT/teacher_eval.tar.gz -C /tmp teacher
