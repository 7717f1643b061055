#!/usr/bin/env bash
# Build TensorRT engines for THIS machine's GPU from an exported model folder, then (where trtexec
# exists) time each engine with trtexec. Usage:
#
#   runtime/build_engines.sh --model MODEL_DIR [--out ENGINE_DIR] [other `jamsdk build` options, e.g. --workspace 2048]
#
# Engines only load on the GPU model and TensorRT version they were built with: run this on the
# target itself (on a Jetson, after the set-up in docs/jetson.md; `jamsdk doctor` checks it).
# The engines timed are the ones just built: in ENGINE_DIR with --out, else in MODEL_DIR.
set -euo pipefail

usage="usage: $0 --model MODEL_DIR [--out ENGINE_DIR] [jamsdk build options]"
MODEL_DIR=""
ENGINE_DIR=""
PASS=()
VALUE_NEXT=0
while [ $# -gt 0 ]; do
    case "$1" in
        --model) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; MODEL_DIR="$2"; shift 2 ;;
        --model=*) MODEL_DIR="${1#--model=}"; shift ;;
        --out) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }; ENGINE_DIR="$2"; PASS+=("--out" "$2"); shift 2 ;;
        --out=*) ENGINE_DIR="${1#--out=}"; PASS+=("--out" "$ENGINE_DIR"); shift ;;
        -h|--help) echo "$usage"; exit 0 ;;
        -*=*) PASS+=("$1"); shift; VALUE_NEXT=0; continue ;;
        -*) PASS+=("$1"); shift; VALUE_NEXT=1; continue ;;
        *)
            if [ "$VALUE_NEXT" -ne 1 ]; then  # not the value of a pass-through option (--workspace 2048)
                echo "$0: unexpected argument '$1': name the model folder with --model $1" >&2
                exit 2
            fi
            PASS+=("$1"); shift ;;
    esac
    VALUE_NEXT=0
done
if [ -z "$MODEL_DIR" ]; then
    echo "$usage" >&2
    exit 2
fi
[ -n "$ENGINE_DIR" ] || ENGINE_DIR="$MODEL_DIR"

echo "== machine"
python3 -c "import tensorrt as t; print('TensorRT', t.__version__)" 2>/dev/null \
    || echo "TensorRT: does not import here (jamsdk doctor says why)"
if command -v nvpmodel >/dev/null 2>&1; then  # Jetson: the power mode belongs with every number
    nvpmodel -q 2>/dev/null | head -n 2 || true
fi

echo "== jamsdk build"
jamsdk build --model "$MODEL_DIR" ${PASS[@]+"${PASS[@]}"}

TRTEXEC="$(command -v trtexec || true)"
[ -z "$TRTEXEC" ] && [ -x /usr/src/tensorrt/bin/trtexec ] && TRTEXEC=/usr/src/tensorrt/bin/trtexec
if [ -n "$TRTEXEC" ]; then
    echo "== trtexec (GPU compute time per engine, CUDA graphs, spin-wait)"
    shopt -s nullglob
    engines=("$ENGINE_DIR"/*.engine)
    if [ ${#engines[@]} -eq 0 ]; then
        echo "no .engine files in $ENGINE_DIR" >&2
        exit 1
    fi
    for engine in "${engines[@]}"; do
        echo "-- $(basename "$engine")"
        "$TRTEXEC" --loadEngine="$engine" --useCudaGraph --useSpinWait --warmUp=500 --duration=10 \
            2>&1 | grep -E "GPU Compute Time|Throughput" || true
    done
else
    echo "(trtexec not found: skipping the per-engine timing)"
fi
