#!/usr/bin/env bash
# Here, before a GPU lease: the default teacher's GGUF (98 MB) xz-compressed (90 MB) and cut in two halves for
# two back-to-back calls, each under the 64 MiB a call may carry together with the tracked tree and wheels:
#   .stage1/teacher.xz.part00 (48 MB, call 1 leaves it in ~/stage)  .stage2/teacher.xz.part01 (call 2)
# stage_teacher.sh joins, unpacks and checks them on the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
G=$(python3 -c "from lawcat.models.teacher import default_teacher_path; print(default_teacher_path())")
rm -rf .stage1 .stage2 && mkdir -p .stage1 .stage2
xz -T0 -6 -c "$G" > /tmp/teacher.xz
split -b 48000000 -d /tmp/teacher.xz /tmp/teacher.xz.part
mv /tmp/teacher.xz.part00 .stage1/ && mv /tmp/teacher.xz.part01 .stage2/ && rm /tmp/teacher.xz
# The tokenizer alone (0.45 MB as xz) rides in call 1, so call 1 can time stage 1 on a random-weight teacher of
# the default's shape before the GGUF is whole (call_tests.sh).
T=$(python3 -c "from lawcat import load_teacher; m, tok = load_teacher('default'); print(tok.name_or_path)" 2>/dev/null)
tar cJf .stage1/tok.tar.xz -C "$T" tokenizer.json tokenizer_config.json
ls -la .stage1 .stage2
