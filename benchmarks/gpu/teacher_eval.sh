#!/usr/bin/env bash
# The default teacher on every long-context task (issue 4's measurement), paper sample counts, until a deadline.
# Sourced-teacher scripts call it (the teacher must be staged: see stage_teacher.sh). Each task's results.json is
# rewritten after every length, so a task cut by the deadline keeps the lengths it finished.
#   DEADLINE=<epoch seconds> OUTDIR=/tmp/teacher bash benchmarks/gpu/teacher_eval.sh [task ...]
set -uo pipefail
TASKS=${*:-passkey niah1 niah2 niah3 babilong-qa2 babilong-qa3}
OUTDIR=${OUTDIR:-/tmp/teacher}
for t in $TASKS; do
  left=$(( DEADLINE - $(date +%s) ))
  if [ $left -lt 20 ]; then echo "teacher_eval: no time left for $t"; continue; fi
  case $t in
    babilong*) L=0k,1k,2k,4k,8k,16k,32k ;;
    *) L=1k,2k,4k,8k,16k,32k ;;
  esac
  timeout $left python3 -m lawcat.cli eval default --task $t --lengths $L --batch-size 25 --max-batch-tokens 65536 \
    --name teacher --out $OUTDIR/$t > $OUTDIR/$t.log 2>&1
  echo "teacher_eval $t exit $? ($(( $(date +%s) - DEADLINE + left )) s)"
done
