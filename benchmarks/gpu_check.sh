#!/usr/bin/env bash
# GPU check for an NVIDIA machine with PyTorch (CUDA) and cuda-bindings, with or without TensorRT, and
# no network: runs from a checkout, without `pip install -e .` (PYTHONPATH = the repository root).
# At most 7 minutes on a GPU (140 s per part, 200 s for the engine part, within a 400 s budget for the
# whole run; 600 s per part with --device cpu). The interpreter: $PYTHON if set, else python3, else
# python. Usage:
#
#   benchmarks/gpu_check.sh [--out DIR] [--device cuda|cpu] [--quick] [--parts pipeline,engines,fp16_numerics,latency]
#
#   (a) benchmarks/gpu_check_pipeline.py: the cuda-python plumbing of the device-resident TensorRT
#       pipeline with a PyTorch-backed engine stand-in, against ONNX Runtime on the CPU
#       (recorded as "not available" when this checkout does not have that script; --device cpu
#       runs it with --cpu-standin);
#   (d) benchmarks/gpu_check_engines.py: real TensorRT where `import tensorrt` works: the demo model's
#       engines built FP16 and INT8 (from its Q/DQ graphs), opened with Animator and StreamBatch (B=4):
#       parity with ONNX Runtime FP32, per-stage and end-to-end latency, bytes moved, device memory
#       (GPU_CHECK_MODEL=DIR: an exported folder with fp16/int8 and batch-4 graphs instead of exporting);
#       without TensorRT it prints "TensorRT not installed: engine part skipped" (verdict SKIPPED;
#       --device cpu runs its logic on the tests' CUDA/TensorRT stand-ins);
#   (b) benchmarks/gpu_fp16_numerics.py: FP16 numerics per stage and end to end, TF32 off and on;
#   (c) benchmarks/gpu_latency.py: FP16 per-stage and per-frame latency, jam-256 vs mraa-256,
#       eager and CUDA graphs.
#
# Writes into DIR (default: the current folder): gpu_check_pipeline.json, gpu_check_engines.json,
# fp16_numerics.json, latency.json
# (each part writes what it has measured as it goes, so a timeout keeps it), a .log per part, env.txt
# (nvidia-smi, torch, cuda-bindings, CuPy) and gpu_check.json, the summary, rewritten after every part
# (benchmarks/gpu_check_summary.py): per part its verdict (PASS, FAIL, SKIPPED, NOT AVAILABLE), status
# (ok, failed, timeout, skipped, not available), seconds, files and the measured numbers, and which parts
# ran and which were skipped.
# --device cpu --quick runs the logic on a CPU with tiny models; --parts reruns only the parts named.
# The exit status is 0 when no part's verdict is FAIL (failed, timed out, or its checks did not hold).
set -uo pipefail

OUT="."
DEVICE="cuda"
QUICK=0
PARTS="pipeline,engines,fp16_numerics,latency"
usage="usage: $0 [--out DIR] [--device cuda|cpu] [--quick] [--parts pipeline,engines,fp16_numerics,latency]"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#--out=}"; shift ;;
        --device) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; DEVICE="$2"; shift 2 ;;
        --device=*) DEVICE="${1#--device=}"; shift ;;
        --quick) QUICK=1; shift ;;
        --parts) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; PARTS="$2"; shift 2 ;;
        --parts=*) PARTS="${1#--parts=}"; shift ;;
        -h|--help) echo "$usage"; exit 0 ;;
        *) echo "$0: unexpected argument '$1'" >&2; echo "$usage" >&2; exit 2 ;;
    esac
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
# python3 first: on GPU machines a PyTorch venv's python3 is often the one with torch beside a system python.
PY="${PYTHON:-$(command -v python3 || command -v python)}"
STARTED=$(date +%s)
PIPELINE="${GPU_CHECK_PIPELINE:-$REPO/benchmarks/gpu_check_pipeline.py}"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
        || echo "nvidia-smi: not available"
    "$PY" - <<'EOF' 2>&1
import importlib, platform
print("python", platform.python_version())
for name in ("torch", "cuda.bindings", "cupy", "onnxruntime", "tensorrt"):
    try:
        mod = importlib.import_module(name)
        print(name, getattr(mod, "__version__", "?"))
    except Exception as exc:
        print(name, "not importable:", str(exc).splitlines()[0][:100])
import torch
print("torch.cuda", torch.version.cuda, "available", torch.cuda.is_available())
EOF
} > "$OUT/env.txt"

LIMIT=140     # seconds per part on a GPU
ENGINES_LIMIT=200  # the engine part exports the demo model and builds two engine folders
BUDGET="${GPU_CHECK_BUDGET:-400}"  # seconds for the whole GPU run (env.txt included); with the 5 s kill grace < 7 min
KILL_AFTER=5
if [ "$DEVICE" = cpu ]; then LIMIT=600; ENGINES_LIMIT=600; BUDGET=100000; fi  # the logic on a (shared, slow) CPU
PIPELINE_ARGS=(--out "$OUT")
ENGINES_ARGS=(--out "$OUT")
[ -n "${GPU_CHECK_MODEL:-}" ] && ENGINES_ARGS+=(--model "$GPU_CHECK_MODEL")
if [ "$DEVICE" = cpu ]; then  # their CPU runs go over the tests' CUDA (and TensorRT) stand-ins
    PIPELINE_ARGS+=(--cpu-standin)
    ENGINES_ARGS+=(--cpu-standin)
fi
if [ "$QUICK" = 1 ]; then
    PIPELINE_ARGS+=(--frames 2)
    ENGINES_ARGS+=(--frames 2)
    NUMERICS_ARGS=(--config tiny-jam --frames 1)
    LATENCY_ARGS=(--config tiny-jam --config tiny-mraa --iters 1 --rounds 1 --warmup 0)
else
    NUMERICS_ARGS=(--config jam-256 --config mraa-256 --frames 8)
    LATENCY_ARGS=(--config jam-256 --config mraa-256 --iters 50 --rounds 6 --warmup 10)
fi

STATUS=()  # "name status seconds json log" per part
summarise() { "$PY" "$REPO/benchmarks/gpu_check_summary.py" "$OUT" "${STATUS[@]}"; }
part() {  # part NAME JSON [LIMIT] -- command...
    local name="$1" json="$2" cap="$LIMIT"
    shift 2
    if [ "$1" != "--" ]; then cap="$1"; shift; fi
    shift
    local log="$OUT/$name.log" start rc status limit left
    left=$(( BUDGET - ($(date +%s) - STARTED) - KILL_AFTER ))
    limit=$(( left < cap ? left : cap ))
    if [ "$limit" -lt 10 ]; then
        echo "== $name: not started (the run's ${BUDGET}s budget is spent)"
        STATUS+=("$name timeout 0 $json $name.log")
        summarise
        return
    fi
    echo "== $name (limit ${limit}s)"
    start=$(date +%s)
    timeout --kill-after="$KILL_AFTER" "$limit" "$@" > "$log" 2>&1
    rc=$?
    case $rc in
        0) status="ok"; grep -q '"status": "skipped"' "$OUT/$json" 2>/dev/null && status="skipped" ;;
        124|137) status="timeout" ;;
        *) status="failed" ;;
    esac
    tail -n 30 "$log"
    echo "-- $name: $status ($(( $(date +%s) - start ))s)"
    STATUS+=("$name $status $(( $(date +%s) - start )) $json $name.log")
    summarise
}

wanted() { case ",$PARTS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for name in ${PARTS//,/ }; do
    case "$name" in pipeline|engines|fp16_numerics|latency) ;; *) echo "$0: unknown part '$name'" >&2; exit 2 ;; esac
done

cd "$REPO" || exit 2
if wanted pipeline && [ -f "$PIPELINE" ]; then
    part pipeline gpu_check_pipeline.json -- "$PY" "$PIPELINE" "${PIPELINE_ARGS[@]}"
elif wanted pipeline; then
    echo "== pipeline: not available ($PIPELINE is not in this checkout)"
    STATUS+=("pipeline not_available 0 - -")
    summarise
fi
if wanted engines; then
    part engines gpu_check_engines.json "$ENGINES_LIMIT" -- "$PY" benchmarks/gpu_check_engines.py "${ENGINES_ARGS[@]}"
fi
if wanted fp16_numerics; then
    part fp16_numerics fp16_numerics.json -- "$PY" benchmarks/gpu_fp16_numerics.py --device "$DEVICE" \
        "${NUMERICS_ARGS[@]}" --json "$OUT/fp16_numerics.json"
fi
if wanted latency; then
    part latency latency.json -- "$PY" benchmarks/gpu_latency.py --device "$DEVICE" "${LATENCY_ARGS[@]}" \
        --json "$OUT/latency.json"
fi

summarise  # exits 1 when a part's verdict is FAIL
