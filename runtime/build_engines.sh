#!/usr/bin/env bash
# Build TensorRT engines for THIS machine's GPU from an exported model folder, then (where trtexec
# exists) time each engine with trtexec. Usage:
#
#   runtime/build_engines.sh --model MODEL_DIR [other `jamsdk build` options, e.g. --out ENGINE_DIR --workspace 2048]
#
# Every option goes to `jamsdk build` unchanged; the engines are timed where they were written
# (--out if given, else --model).
# Engines only load on the GPU model and TensorRT version they were built with: run this on the
# target itself (on a Jetson, after the setup in runtime/README.md).
set -euo pipefail

ENGINE_DIR=""
MODEL_DIR=""
prev=""
for arg in "$@"; do
    case "$prev" in
        --model) MODEL_DIR="$arg" ;;
        --out) ENGINE_DIR="$arg" ;;
    esac
    case "$arg" in
        --model=*) MODEL_DIR="${arg#--model=}" ;;
        --out=*) ENGINE_DIR="${arg#--out=}" ;;
    esac
    prev="$arg"
done
if [ -z "$MODEL_DIR" ]; then
    echo "usage: $0 --model MODEL_DIR [jamsdk build options]" >&2
    exit 2
fi
ENGINE_DIR="${ENGINE_DIR:-$MODEL_DIR}"

echo "== machine"
python3 -c "import tensorrt as t; print('TensorRT', t.__version__)"
if command -v nvpmodel >/dev/null 2>&1; then  # Jetson: the power mode belongs with every number
    nvpmodel -q 2>/dev/null | head -n 2 || true
fi

echo "== jamsdk build"
jamsdk build "$@"

TRTEXEC="$(command -v trtexec || true)"
[ -z "$TRTEXEC" ] && [ -x /usr/src/tensorrt/bin/trtexec ] && TRTEXEC=/usr/src/tensorrt/bin/trtexec
if [ -n "$TRTEXEC" ]; then
    echo "== trtexec (GPU compute time per engine, CUDA graphs, spin-wait)"
    for engine in "$ENGINE_DIR"/*.engine; do
        echo "-- $(basename "$engine")"
        "$TRTEXEC" --loadEngine="$engine" --useCudaGraph --useSpinWait --warmUp=500 --duration=10 \
            2>&1 | grep -E "GPU Compute Time|Throughput" || true
    done
else
    echo "(trtexec not found: skipping the per-engine timing)"
fi
