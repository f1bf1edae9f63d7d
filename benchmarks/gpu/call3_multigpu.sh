#!/usr/bin/env bash
# GPU call 3 on a 2-GPU machine (carry .whl and .stage3; the teacher is normally still there from call 2).
# Issue 7: the distillation path under torchrun, 1 GPU vs 2 GPUs, same global batch:
#   ddp:  the passkey recipe on the default teacher (data parallel), both stages, short;
#   fsdp: stage 1 on a random-weight Llama-3-8B shape, parallel=fsdp (plain single-GPU run as the reference).
# While the 1-GPU runs use GPU 0, GPU 1 finishes the teacher tasks call 2 did not reach (TEACHER_TASKS).
#   TEACHER_TASKS="babilong-qa3" bash benchmarks/gpu/call3_multigpu.sh
set -uo pipefail
T0=$(date +%s)
source benchmarks/gpu/stage_teacher.sh
R=/tmp/call3; mkdir -p $R/teacher
nvidia-smi --query-gpu=name,memory.total --format=csv | tee $R/gpu.txt
DDP="data.n_train=2400 data.n_val=64 stage1.max_steps=120 stage2.max_steps=80 stage1.batch_size=16 stage2.batch_size=16 stage1.save_every=1000 stage2.save_every=1000"
FSDP="parallel=fsdp data.length=1024 data.n_train=1600 data.n_val=16 stage2.epochs=0 stage1.max_steps=200 stage1.batch_size=8 stage1.save_every=1000 stage1.warmup_steps=20"
distill() {  # name nproc teacher overrides...
  local name=$1 n=$2 teacher=$3; shift 3
  timeout 300 torchrun --standalone --nproc_per_node $n -m lawcat.cli distill --recipe recipes/passkey.yaml \
    --teacher $teacher --out $R/$name "$@" 2>&1 | tr '\r' '\n' | grep -v "^stage[12]: .*|" > $R/$name.log
  echo "$name exit ${PIPESTATUS[0]} after $(( $(date +%s) - T0 )) s" | tee -a $R/runs.txt
  rm -rf $R/$name/state $R/$name/model.safetensors $R/$name/tokenizer*  # the logs and summary are the result
}
if [ -n "${TEACHER_TASKS:-}" ]; then
  ( CUDA_VISIBLE_DEVICES=1 DEADLINE=$(( T0 + 260 )) OUTDIR=$R/teacher bash benchmarks/gpu/teacher_eval.sh $TEACHER_TASKS > $R/teacher_eval.log 2>&1 ) &
fi
CUDA_VISIBLE_DEVICES=0 distill ddp1 1 default $DDP
CUDA_VISIBLE_DEVICES=0 distill fsdp1 1 random:llama-3-8b $FSDP
wait
distill ddp2 2 default $DDP
distill fsdp2 2 random:llama-3-8b $FSDP
python3 benchmarks/multigpu_report.py --pair ddp $R/ddp1 $R/ddp2 --pair fsdp $R/fsdp1 $R/fsdp2 --out $R/report
cat $R/teacher_eval.log 2>/dev/null
tar czf $OUT/call3.tar.gz -C /tmp call3
