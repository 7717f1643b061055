#!/usr/bin/env bash
# Every CPU speed table (MRAA comparison, OpenVINO, INT8, CPU throughput for many streams), in one
# command, on a quiet machine (each script interleaves its rows; absolute times are only worth
# reading at low load; the load average is written beside every table):
#   bash benchmarks/cpu_tables.sh OUT_DIR            # ~75 min on 2 idle cores
# the issue's proof first (compare, batch, batch_job, serve, the per-op profile), then the rest;
# writes OUT_DIR/{compare,cpu_backends,fp32_rewrite,int8,batch,batch_job,serve,ov_profile}.{json,md}
# (+ compare.png), OUT_DIR/loadavg.txt, and the jam-256 folders they share (OUT_DIR/jam256: this
# jamsdk, INT8 + batched 4 and 8; OUT_DIR/jam256-before: the same weights exported by jamsdk at
# 15b1c3a, before batched INT8 and the CPU rewrites, for the per-op profile's "before").
# JAM256=DIR and BEFORE=DIR reuse such folders instead of exporting them again.
set -euo pipefail
out="${1:?usage: bash benchmarks/cpu_tables.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/_machine.sh
source benchmarks/_machine.sh
note start
machine_line
jam256="${JAM256:-$out/jam256}"
before="${BEFORE:-$out/jam256-before}"
if [ -z "${JAM256:-}" ]; then
  python benchmarks/jam256_folder.py "$jam256" --batch-sizes 4,8 > "$out/jam256-export.log"
  note "after jam256_folder.py"
fi
python benchmarks/compare.py --rounds 8 --model "$jam256" --json "$out/compare.json" \
  --markdown "$out/compare.md" --png "$out/compare.png"
note "after compare.py"
python benchmarks/batch.py --model "$jam256" --sizes 1,4,8 --rounds 5 --steps 4 \
  --variants onnxruntime:fp32,openvino:fp32,openvino:int8,openvino-throughput:int8 \
  --json "$out/batch.json" --markdown "$out/batch.md"
note "after batch.py"
python benchmarks/batch_job.py --model "$jam256" --sizes 1,8,auto --rows 2 --frames 80 --repeats 2 \
  --variants onnxruntime:fp32,openvino:int8,auto:auto --json "$out/batch_job.json" \
  --markdown "$out/batch_job.md"
note "after batch_job.py"
python benchmarks/serve_throughput.py --model "$jam256" --variants onnxruntime:fp32:all,auto:auto:all,auto:auto:auto --streams 4 \
  --seconds 30 --rounds 4 --json "$out/serve.json" --markdown "$out/serve.md"
note "after serve_throughput.py"
# "before": the same trained-like jam-256 exported by jamsdk at 15b1c3a (its own code, this venv)
if [ -z "${BEFORE:-}" ]; then
rm -rf "$out/before-src" && mkdir -p "$out/before-src"
git archive 15b1c3a | tar -x -C "$out/before-src"
(cd "$out/before-src/benchmarks" && PYTHONPATH="$out/before-src" python - "$before" <<'PY'
# as jam256_folder.py exports (weights, clip, 16 calibration frames), with 15b1c3a's export
import sys, tempfile
from pathlib import Path
from compare import build
from jamsdk.config import CONFIG_DIR
from jamsdk.export.pipeline import export_checkpoint
from jamsdk.model.checkpoint import save_checkpoint
assets = CONFIG_DIR.parent / "assets"
model = build("jam-256", "trained-like")
with tempfile.TemporaryDirectory() as tmp:
    save_checkpoint(Path(tmp) / "c.pt", model, model.cfg)
    export_checkpoint(Path(tmp) / "c.pt", sys.argv[1], precision="int8", avd="off", threads=2,
                      calibration=assets / "example_driving.mp4", calibration_source=assets / "example_source.png",
                      calibration_frames=16, log=lambda _l: None)
PY
)
note "after the 15b1c3a export"
fi
python benchmarks/ov_profile.py --model "$jam256" --before "$before" --runs 8 \
  --json "$out/ov_profile.json" --markdown "$out/ov_profile.md"
note "after ov_profile.py"
# the tables behind the single-stream rows (backends, rewrites, INT8 per stage) come last
python benchmarks/cpu_backends.py --model "$jam256" --rounds 8 --pinning --json "$out/cpu_backends.json" \
  --markdown "$out/cpu_backends.md"
note "after cpu_backends.py"
python benchmarks/fp32_rewrite.py --rounds 16 --json "$out/fp32_rewrite.json" --markdown "$out/fp32_rewrite.md"
note "after fp32_rewrite.py"
python benchmarks/int8.py --rounds 6 --frames 4 --json "$out/int8.json" --markdown "$out/int8.md"
note "after int8.py"
