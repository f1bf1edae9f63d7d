#!/usr/bin/env bash
# GPU call 1 of a lease (carry .whl and .stage1): lawcat's Triton GLA kernel checked on the GPU (its CUDA tests)
# and timed beside fla's chunk_gla (plain V = 64 and on [v, 1]; fla's kernels pinned to one config each, as lawcat
# runs them, since autotuning takes minutes) and SDPA's FlashAttention (benchmarks/bench_norm_gla.py); both stages replayed from CUDA graphs (and the decode step),
# checked, and the stages timed (also at trained-like gates, --gate-logit -300), on a
# random-weight teacher of the default's shape (the tokenizer from .stage1/tok.tar.xz), and the first half of
# the teacher transfer (part 00 kept in ~/stage; then call_keep_part.sh with .stage2 and call_passkey_grid.sh with .stage3, back to back).
# Leaves for that call: ~/stage/graph_ok and ~/stage/graph2_ok (1 when every stage-1 / stage-2 CUDA-graph test
# passed, else 0: the grid's S1_GRAPH / S2_GRAPH) and ~/stage/throughput.json. Logs and throughput.json under $OUT.
#   bash benchmarks/gpu/call_stage1_graph.sh
set -uo pipefail
source benchmarks/gpu/first_call.sh
timeout ${KERNEL_TEST_LIMIT:-200} python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/ops/test_triton_norm_gla.py \
  > $OUT/kernel_tests.log 2>&1; echo "pytest exit $?" >> $OUT/kernel_tests.log
timeout ${KERNEL_BENCH_LIMIT:-130} python3 benchmarks/bench_norm_gla.py $OUT/bench_norm_gla.json --methods ours,fla64,fla65,flash --fla-configs pinned \
  --T 1024,4096,16384,65536,131072 --check-T 0 --time-budget 100 > $OUT/bench_norm_gla.log 2>&1
echo "bench exit $?" >> $OUT/bench_norm_gla.log
timeout ${TEST_LIMIT:-150} python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/distill/test_stage1_graph.py \
  > $OUT/graph_tests.log 2>&1; rc=$?; echo "pytest exit $rc" >> $OUT/graph_tests.log
[ $rc = 0 ] && echo 1 > ~/stage/graph_ok || echo 0 > ~/stage/graph_ok
timeout ${TEST_LIMIT:-150} python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/distill/test_stage2.py \
  > $OUT/graph2_tests.log 2>&1; rc=$?; echo "pytest exit $rc" >> $OUT/graph2_tests.log
[ $rc = 0 ] && echo 1 > ~/stage/graph2_ok || echo 0 > ~/stage/graph2_ok
timeout 90 python3 -m pytest -q -s -p no:cacheprovider -m cuda tests/models/test_graph_decode.py \
  > $OUT/decode_graph_tests.log 2>&1; echo "pytest exit $?" >> $OUT/decode_graph_tests.log
timeout ${BENCH_LIMIT:-240} python3 benchmarks/stage1_throughput.py --teacher random:smollm2-135m --tokenizer /tmp/tok \
  --length 1162 --batch-size 8 --steps 20 --gla-backends triton,auto --layer-groups 0 --cuda-graph both --teacher-graph \
  --out $OUT/throughput.json > $OUT/throughput.log 2>&1; echo "throughput exit $?" >> $OUT/throughput.log
cp $OUT/throughput.json ~/stage/ 2>/dev/null
# the same at gates of -19 per step (trained gates reached that): the exact kernel's time must not depend on them
timeout ${BENCH_LIMIT:-120} python3 benchmarks/stage1_throughput.py --teacher random:smollm2-135m --tokenizer /tmp/tok \
  --length 1162 --batch-size 8 --steps 20 --gla-backends triton --layer-groups 0 --cuda-graph both --teacher-graph \
  --gate-logit -300 --out $OUT/throughput_strong_gates.json > $OUT/throughput_strong_gates.log 2>&1
echo "throughput exit $?" >> $OUT/throughput_strong_gates.log
grep -hE "passed|failed|Error|exit" $OUT/kernel_tests.log | tail -5; tail -25 $OUT/bench_norm_gla.log
grep -hE "GRAPH|passed|failed|Error|exit" $OUT/graph_tests.log $OUT/graph2_tests.log $OUT/decode_graph_tests.log | tail -40
python3 - <<'PY' || tail -20 $OUT/throughput.log
import json, os
for name in ("throughput.json", "throughput_strong_gates.json"):
  if not os.path.exists(os.environ["OUT"] + "/" + name):
    print("missing", name); continue
  d = json.load(open(os.environ["OUT"] + "/" + name))
  print(name, "gate logit", d.get("gate_logit"))
  for k, v in d["by_backend"].items():
    print(" ", k, v.get("error") or {n: round(t, 4) for n, t in v["s_per_step"].items()}, v.get("stage2_graph_error", ""),
          "" if "stage1_over_teacher" not in v else f"s1/teacher {v['stage1_over_teacher']:.3f} "
          f"s1/graphed teacher {v.get('stage1_over_graphed_teacher', 0):.3f}")
PY
