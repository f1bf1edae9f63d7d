#!/usr/bin/env bash
# The default teacher on every long-context task (issue 4's measurement), paper sample counts, until a deadline.
# Sourced-teacher scripts call it (the teacher must be staged: see stage_teacher.sh). Each task's results.json is
# rewritten after every length, so a task cut by the deadline keeps the lengths it finished.
#   DEADLINE=<epoch seconds> OUTDIR=/tmp/teacher bash benchmarks/gpu/teacher_eval.sh [task[@lengths] ...]
# A task may name its lengths (niah1@32k): its folder is then <task>@<lengths>, to be merged with the rest.
# MAX_BATCH_TOKENS (default 393216) caps the prompt tokens per batch: a padded softmax batch builds a mask of
# rows x length^2 bytes (12 rows at 32K: 13 GB).
set -uo pipefail
TASKS=${*:-passkey niah1 niah2 niah3 babilong-qa2 babilong-qa3}
OUTDIR=${OUTDIR:-/tmp/teacher}
mkdir -p $OUTDIR
for item in $TASKS; do
  t=${item%%@*}
  left=$(( DEADLINE - $(date +%s) ))
  if [ $left -lt 20 ]; then echo "teacher_eval: no time left for $item"; continue; fi
  case $t in
    babilong*) L=0k,1k,2k,4k,8k,16k,32k ;;
    *) L=1k,2k,4k,8k,16k,32k ;;
  esac
  [ "$item" != "$t" ] && L=${item#*@}
  timeout $left python3 -m lawcat.cli eval default --task $t --lengths $L --batch-size 25 \
    --max-batch-tokens ${MAX_BATCH_TOKENS:-393216} --name teacher --out $OUTDIR/$item > $OUTDIR/$item.log 2>&1
  echo "teacher_eval $item exit $? ($(( $(date +%s) - DEADLINE + left )) s)"
done
