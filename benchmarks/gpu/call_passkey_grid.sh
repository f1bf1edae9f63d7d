#!/usr/bin/env bash
# GPU call right after call_tests.sh on the same machine (carry .whl2 and .stage3, after call_keep_part.sh carried .stage2). On one GPU, in order:
#   1. the teacher staged; stage-1 and stage-2 throughput against the teacher's forward, alone on the GPU
#      (fla and lawcat's Triton kernel, all layers fused and layer by layer): throughput.json;
#   2. side by side until the deadline: the passkey recipe once per variant with one time-boxed budget (the
#      faster GLA backend of step 1), each student then evaluated on passkey 1K-32K, 50 samples per length;
#      and the default teacher on TEACHER_TASKS (teacher_eval.sh syntax, e.g. "niah2 niah1@32k").
#   VARIANTS="lawcat:preset=lawcat lolcats:preset=lolcats gate16:model.gate_rank=16" S1=100 S2=170 SLOWDOWN=2.5 \
#     TEACHER_TASKS="niah2 niah3" bash benchmarks/gpu/call_passkey_grid.sh
# A variant is name:override[,override...]. Two overrides are the script's own: recipe=R (recipes/R.yaml, default
# passkey) and tasks=T1+T2 (what the student is evaluated on, default passkey; niah*/babilong-* at the paper's sample
# counts), e.g. "niah:recipe=niah,tasks=niah1+niah2+niah3,preset=lawcat". Each student comes back as
# $OUT/<name>.tar.gz, the rest (throughput, plan, logs, teacher results) as $OUT/common.tar.gz.
# A later call on the same warm machine can reuse step 1: RUN_DIR=/tmp/grid2 THROUGHPUT=/tmp/grid/throughput.json
# SKIP_THROUGHPUT=1, and N1/N2 to give its variants the same step counts as the first call's (plan.txt).
# S1_GRAPH=1 / S2_GRAPH=1: stage 1 / stage 2 replayed from CUDA graphs (stage1/2.cuda_graph=true), planned with
# their graph timings.
set -uo pipefail
T0=$(date +%s)
DEADLINE=$(( T0 + ${BUDGET_S:-575} ))
S1=${S1:-100}; S2=${S2:-170}
source benchmarks/gpu/stage_teacher.sh
R=${RUN_DIR:-/tmp/grid}; mkdir -p $R
TP=${THROUGHPUT:-$R/throughput.json}
nvidia-smi --query-gpu=name,memory.total --format=csv > $R/gpu.txt
if [ "${SKIP_THROUGHPUT:-0}" = 0 ]; then
  timeout 150 python3 benchmarks/stage1_throughput.py --length 1162 --batch-size 8 --steps 20 --gla-backends ${THROUGHPUT_BACKENDS:-auto,triton} \
    --layer-groups 0,1 $([ "${S1_GRAPH:-0}${S2_GRAPH:-0}" != 00 ] && echo --cuda-graph on) --out $TP > $R/throughput.log 2>&1
fi
# The throughput run trains both stages on the real model: if it failed, so would every variant (2026-12-01).
if [ ! -f $TP ]; then
  echo "no throughput measurement ($TP): not launching the variants"; tail -25 $R/throughput.log
  tar czf $OUT/common.tar.gz -C $R .; exit 6
fi
# Step counts for the time box, with the faster measured GLA backend (stage-1 fused + stage-2 step); GLA=... forces one.
GRAPH_OVERRIDE=""; GRAPH_PLAN=""
if [ "${S1_GRAPH:-0}" = 1 ]; then GRAPH_OVERRIDE="stage1.cuda_graph=true"; GRAPH_PLAN="--stage1-variant /graph"; fi
if [ "${S2_GRAPH:-0}" = 1 ]; then GRAPH_OVERRIDE="$GRAPH_OVERRIDE stage2.cuda_graph=true"; GRAPH_PLAN="$GRAPH_PLAN --stage2-graph"; fi
PLAN=$(python3 benchmarks/gpu/plan_steps.py $TP --stage1-seconds $S1 --stage2-seconds $S2 \
  --cap 5000 --slowdown ${SLOWDOWN:-2.5} --backend ${GLA:-best} $GRAPH_PLAN 2>$R/plan.err) || {
  echo "no step plan from $TP: $(cat $R/plan.err)"; tar czf $OUT/common.tar.gz -C $R .; exit 7; }
read N1 N2 BEST <<< "$PLAN"
GLA=${GLA:-$BEST}
N1=${FIXED_N1:-$N1}; N2=${FIXED_N2:-$N2}
echo "backend $GLA ${GRAPH_OVERRIDE}, planned steps: stage1 $N1, stage2 $N2 (caps ${S1}s, ${S2}s) at +$(( $(date +%s) - T0 ))s" | tee $R/plan.txt
# Only when asked: teacher_eval.sh with no tasks runs all six, and on 2026-12-02 that shared the GPU with the variants.
if [ -n "${TEACHER_TASKS:-}" ]; then
  ( DEADLINE=$(( DEADLINE - 5 )) OUTDIR=$R/teacher bash benchmarks/gpu/teacher_eval.sh $TEACHER_TASKS > $R/teacher_eval.log 2>&1 ) &
fi
for v in ${VARIANTS:-lawcat:preset=lawcat}; do
  name=${v%%:*}; rest=${v#*:}; recipe=passkey; tasks=passkey; overrides=""
  for o in ${rest//,/ }; do
    case $o in recipe=*) recipe=${o#recipe=} ;; tasks=*) tasks=${o#tasks=} ;; *) overrides="$overrides $o" ;; esac
  done
  (
    timeout -k 10 $(( DEADLINE - $(date +%s) - 60 )) python3 -m lawcat.cli distill --recipe recipes/$recipe.yaml --teacher default \
      --out $R/$name data.n_val=200 stage1.max_steps=$N1 stage2.max_steps=$N2 stage1.max_seconds=$S1 \
      stage2.max_seconds=$S2 model.gla_backend=$GLA $GRAPH_OVERRIDE $overrides 2>&1 | tr '\r' '\n' | awk '!/^stage[12]: .*\|/ || /error/' \
      > $R/$name.distill.log
    echo "distill exit ${PIPESTATUS[0]} at +$(( $(date +%s) - T0 ))s" >> $R/$name.distill.log
    rm -rf $R/$name/state  # resumable optimizer state: not needed back
    for task in ${tasks//+/ }; do
      case $task in
        passkey) lengths=${EVAL_LENGTHS:-1k,2k,4k,8k,16k,32k}; n="--n ${EVAL_N:-50}" ;;
        babilong-*) lengths=0k,1k,2k,4k,8k,16k,32k; n="" ;;   # the paper's 100 per length
        *) lengths=1k,2k,4k,8k,16k,32k; n="" ;;               # S-NIAH: the paper's 25 per length
      esac
      left=$(( DEADLINE - $(date +%s) ))   # (timeout 0 would mean no limit at all)
      [ $left -gt 5 ] && [ -f $R/$name/model.safetensors ] && timeout -k 10 $left python3 -m lawcat.cli eval $R/$name \
        --task $task --lengths $lengths $n --batch-size 25 \
        --max-batch-tokens 262144 --name $name --out $R/$name/eval/$task > $R/$name.eval.$task.log 2>&1
      echo "eval $task exit $? at +$(( $(date +%s) - T0 ))s" >> $R/$name.eval.$task.log
    done
    rm -f $R/$name/tokenizer.json $R/$name/tokenizer_config.json $R/$name/chat_template.jinja  # the teacher's own
    # into $OUT at once: a call cut by its time limit still returns every student that finished
    cp $R/$name.*.log $R/$name/ 2>/dev/null; tar czf $OUT/$name.tar.gz -C $R $name
  ) &
done
wait
cat $R/plan.txt $R/teacher_eval.log 2>/dev/null; for f in $R/*.distill.log; do echo "== $f"; tail -3 $f; done
for f in $R/*.eval.*.log; do echo "== $f"; grep -E "passkey|niah|babilong|exit" $f | tail -8; done
# One tarball per student (~10 MB each: a file may carry 16 MiB back), one for the rest.
for v in ${VARIANTS:-lawcat:preset=lawcat}; do [ -f $OUT/${v%%:*}.tar.gz ] || tar czf $OUT/${v%%:*}.tar.gz -C $R ${v%%:*}; done
tar czf $OUT/common.tar.gz -C $R --no-wildcards-match-slash --exclude='./*/model.safetensors' --exclude='./*/eval' --exclude='./*/*.json' \
  --exclude='./*/*.yaml' --exclude='./*/*.jsonl' .
