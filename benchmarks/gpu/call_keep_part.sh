#!/usr/bin/env bash
# The middle call of the teacher transfer (carry .stage2): keeps its part in ~/stage, nothing else. Seconds.
source benchmarks/gpu/keep_parts.sh
