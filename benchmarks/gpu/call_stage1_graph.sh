#!/usr/bin/env bash
# GPU call 1 of a lease (carry .whl and .stage1): both stages replayed from CUDA graphs (and the decode step),
# checked, and the stages timed, on a
# random-weight teacher of the default's shape (the tokenizer from .stage1/tok.tar.xz), and the first half of
# the teacher transfer (part 00 kept in ~/stage; then call_keep_part.sh with .stage2 and call_passkey_grid.sh with .stage3, back to back).
# Leaves for that call: ~/stage/graph_ok and ~/stage/graph2_ok (1 when every stage-1 / stage-2 CUDA-graph test
# passed, else 0: the grid's S1_GRAPH / S2_GRAPH) and ~/stage/throughput.json. Logs and throughput.json under $OUT.
#   bash benchmarks/gpu/call_stage1_graph.sh
set -uo pipefail
source benchmarks/gpu/keep_parts.sh > /dev/null
source benchmarks/gpu/unpack_wheels.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)" >> $OUT/gpu.txt
mkdir -p /tmp/tok && tar xJf .stage1/tok.tar.xz -C /tmp/tok
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
grep -hE "GRAPH|passed|failed|Error|exit" $OUT/graph_tests.log $OUT/graph2_tests.log $OUT/decode_graph_tests.log | tail -40
python3 - <<'PY' || tail -20 $OUT/throughput.log
import json, os
d = json.load(open(os.environ["OUT"] + "/throughput.json"))
for k, v in d["by_backend"].items():
    print(k, v.get("error") or {n: round(t, 4) for n, t in v["s_per_step"].items()}, v.get("stage2_graph_error", ""),
          "" if "stage1_over_teacher" not in v else f"s1/teacher {v['stage1_over_teacher']:.3f} "
          f"s1/graphed teacher {v.get('stage1_over_graphed_teacher', 0):.3f}")
PY
