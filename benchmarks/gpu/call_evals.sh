#!/usr/bin/env bash
# GPU call right after call_tests.sh on the same machine (carry .stage3 and, for a student, its run dir): the
# default teacher on every task (paper sample counts) and a trained student on passkey (50 per length), split
# over the GPUs, until a deadline; results.json files are rewritten after every length.
#   STUDENT=.gpu_student/pk BUDGET_S=330 bash benchmarks/gpu/call_evals.sh
set -uo pipefail
T0=$(date +%s)
source benchmarks/gpu/stage_teacher.sh
R=/tmp/evals; mkdir -p $R/teacher
DEADLINE=$(( T0 + ${BUDGET_S:-330} ))
# A carried student may leave its 3.5 MB tokenizer.json behind: it is the teacher's own.
if [ -n "${STUDENT:-}" ] && [ ! -f $STUDENT/tokenizer.json ]; then cp $LAWCAT_CACHE/teachers/*/tokenizer.json $STUDENT/; fi
(
  export CUDA_VISIBLE_DEVICES=0
  if [ -n "${STUDENT:-}" ]; then
    timeout $(( DEADLINE - $(date +%s) )) python3 -m lawcat.cli eval $STUDENT --task passkey --lengths 1k,2k,4k,8k,16k,32k \
      --n 50 --batch-size 25 --max-batch-tokens 262144 --name lawcat --out $R/student_passkey > $R/student_passkey.log 2>&1
    echo "student passkey exit $?"
  fi
  DEADLINE=$DEADLINE OUTDIR=$R/teacher bash benchmarks/gpu/teacher_eval.sh ${TASKS_GPU0:-babilong-qa3 niah3}
) > $R/gpu0.log 2>&1 &
CUDA_VISIBLE_DEVICES=1 DEADLINE=$DEADLINE OUTDIR=$R/teacher bash benchmarks/gpu/teacher_eval.sh \
  ${TASKS_GPU1:-passkey niah1 niah2 babilong-qa2} > $R/gpu1.log 2>&1
wait
cat $R/gpu0.log $R/gpu1.log; tail -4 $R/student_passkey.log
tar czf $OUT/evals.tar.gz -C /tmp evals
