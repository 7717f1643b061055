#!/usr/bin/env bash
# Every CPU speed table of the README's OpenVINO and MRAA-comparison sections, in one command, on a
# quiet machine (each script interleaves its rows; absolute times are only worth reading at low load):
#   bash benchmarks/cpu_tables.sh OUT_DIR            # ~25 min on 2 idle cores
# writes OUT_DIR/{compare,cpu_backends,fp32_rewrite}.{json,md} (+ compare.png) and OUT_DIR/loadavg.txt
set -euo pipefail
out="${1:?usage: bash benchmarks/cpu_tables.sh OUT_DIR}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/_machine.sh
source benchmarks/_machine.sh
note start
machine_line
python benchmarks/compare.py --rounds 8 --json "$out/compare.json" --markdown "$out/compare.md" --png "$out/compare.png"
note "after compare.py"
python benchmarks/cpu_backends.py --rounds 8 --pinning --rewrite --json "$out/cpu_backends.json" --markdown "$out/cpu_backends.md"
note "after cpu_backends.py"
python benchmarks/fp32_rewrite.py --rounds 16 --json "$out/fp32_rewrite.json" --markdown "$out/fp32_rewrite.md"
note "after fp32_rewrite.py"
