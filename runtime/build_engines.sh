#!/usr/bin/env bash
# Build TensorRT engines for THIS machine's GPU from an exported model folder, then (where trtexec
# exists) time each engine with trtexec. Usage:
#
#   runtime/build_engines.sh MODEL_DIR [extra `jamsdk build` options, e.g. --workspace 2048]
#
# Engines only load on the GPU model and TensorRT version they were built with: run this on the
# target itself (on a Jetson, after the setup in runtime/README.md).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 MODEL_DIR [jamsdk build options]" >&2
    exit 2
fi
MODEL_DIR="$1"
shift

echo "== machine"
python3 -c "import tensorrt as t; print('TensorRT', t.__version__)"
if command -v nvpmodel >/dev/null 2>&1; then  # Jetson: the power mode belongs with every number
    nvpmodel -q 2>/dev/null | head -n 2 || true
fi

echo "== jamsdk build"
jamsdk build "$MODEL_DIR" "$@"

TRTEXEC="$(command -v trtexec || true)"
[ -z "$TRTEXEC" ] && [ -x /usr/src/tensorrt/bin/trtexec ] && TRTEXEC=/usr/src/tensorrt/bin/trtexec
if [ -n "$TRTEXEC" ]; then
    echo "== trtexec (GPU compute time per engine, CUDA graphs, spin-wait)"
    for engine in "$MODEL_DIR"/*.engine; do
        echo "-- $(basename "$engine")"
        "$TRTEXEC" --loadEngine="$engine" --useCudaGraph --useSpinWait --warmUp=500 --duration=10 \
            2>&1 | grep -E "GPU Compute Time|Throughput" || true
    done
else
    echo "(trtexec not found: skipping the per-engine timing)"
fi
