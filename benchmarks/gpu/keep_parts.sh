# Sourced by the GPU call scripts: keep the teacher parts this call carries (.stage1/, .stage2/, .stage3/ from
# split_teacher.sh) in ~/stage, where they wait for the call that assembles them (stage_teacher.sh) on the same,
# still-warm machine.
mkdir -p ~/stage
for part in .stage*/teacher.xz.part*; do [ -f "$part" ] && cp "$part" ~/stage/; done
ls ~/stage
