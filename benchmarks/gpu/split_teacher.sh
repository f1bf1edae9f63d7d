#!/usr/bin/env bash
# Here, before a GPU lease: the default teacher's GGUF (98 MB) xz-compressed (90 MB) and cut in three parts for
# three back-to-back calls, each under the 64 MiB a call may carry together with the tracked tree (~20 MB and
# growing with results) and wheels:
#   .stage1/teacher.xz.part00 (30 MB each)  .stage2/teacher.xz.part01  .stage3/teacher.xz.part02
# Each call keeps its part in ~/stage (keep_parts.sh); stage_teacher.sh joins, unpacks and checks them. (Two
# halves of 48 MB stopped fitting on 2026-12-02, when the tree passed 17 MB.)
set -euo pipefail
cd "$(dirname "$0")/../.."
G=$(python3 -c "from lawcat.models.teacher import default_teacher_path; print(default_teacher_path())")
rm -rf .stage1 .stage2 .stage3 && mkdir -p .stage1 .stage2 .stage3
xz -T0 -6 -c "$G" > /tmp/teacher.xz
split -n 3 -d /tmp/teacher.xz /tmp/teacher.xz.part   # three equal parts, whatever the compressed size
for i in 0 1 2; do mv /tmp/teacher.xz.part0$i .stage$((i + 1))/; done
rm /tmp/teacher.xz
# The tokenizer alone (0.45 MB as xz) rides in call 1, so call 1 can time stage 1 on a random-weight teacher of
# the default's shape before the GGUF is whole (call_tests.sh).
T=$(python3 -c "from lawcat import load_teacher; m, tok = load_teacher('default'); print(tok.name_or_path)" 2>/dev/null)
tar cJf .stage1/tok.tar.xz -C "$T" tokenizer.json tokenizer_config.json
ls -la .stage1 .stage2 .stage3
