#!/usr/bin/env bash
# GPU call 2 (carry .whl and .stage3, sent right after the calls that left teacher parts 00 and 01 in ~/stage). Two jobs side by side:
#   GPU 0: the passkey recipe end to end, time-boxed from a throughput measurement taken first (stage 1 vs the
#          teacher's forward, stage 2), then the student on passkey 1K-32K, 50 samples per length;
#   GPU 1: the default teacher on every task (teacher_eval.sh) until the deadline.
#   bash benchmarks/gpu/call2_distill_and_teacher_eval.sh [stage-1 s] [stage-2 s] [extra recipe overrides...]
set -uo pipefail
T0=$(date +%s)
S1_SECONDS=${1:-150}; S2_SECONDS=${2:-170}; shift 2 2>/dev/null
source benchmarks/gpu/stage_teacher.sh
R=/tmp/call2; mkdir -p $R/teacher
nvidia-smi --query-gpu=name,memory.total --format=csv | tee $R/gpu.txt
( CUDA_VISIBLE_DEVICES=1 DEADLINE=$(( T0 + 545 )) OUTDIR=$R/teacher bash benchmarks/gpu/teacher_eval.sh > $R/teacher_eval.log 2>&1 ) &
EVAL=$!
export CUDA_VISIBLE_DEVICES=0
timeout 120 python3 benchmarks/stage1_throughput.py --length 1162 --batch-size 8 --steps 20 --out $R/throughput.json > $R/throughput.log 2>&1
read S1 S2 < <(python3 benchmarks/gpu/plan_steps.py $R/throughput.json --stage1-seconds $S1_SECONDS --stage2-seconds $S2_SECONDS --cap 5000 || echo "300 300")
echo "planned steps: stage1 $S1, stage2 $S2" | tee $R/plan.txt
timeout $(( S1_SECONDS + S2_SECONDS + 150 )) python3 -m lawcat.cli distill --recipe recipes/passkey.yaml --teacher default \
  --out $R/pk data.n_val=200 stage1.max_steps=$S1 stage2.max_steps=$S2 "$@" 2>&1 | tr '\r' '\n' | grep -v "^stage[12]: .*|" > $R/distill.log
echo "distill exit ${PIPESTATUS[0]}" >> $R/distill.log
rm -rf $R/pk/state  # resumable optimizer state: not needed back
left=$(( T0 + 560 - $(date +%s) ))
[ -f $R/pk/model.safetensors ] && timeout $left python3 -m lawcat.cli eval $R/pk --task passkey --lengths 1k,2k,4k,8k,16k,32k \
  --n 50 --batch-size 25 --max-batch-tokens 262144 --name lawcat --out $R/student_passkey > $R/student_eval.log 2>&1
wait $EVAL
tail -4 $R/distill.log; cat $R/teacher_eval.log; tail -8 $R/student_eval.log
tar czf $OUT/call2.tar.gz -C /tmp call2
