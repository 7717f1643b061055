#!/usr/bin/env bash
# The README's "serve under load" table, in one command, on a quiet machine (each run interleaves
# its alone and attack phases; the ratios are only comparable within one machine and one load):
#   bash benchmarks/serve_tables.sh OUT_DIR [BEFORE_CHECKOUT]     # ~20 min on 2 idle cores
# writes OUT_DIR/{flood,lockstep,heavy,hammer,hammer_noguard}.{json,md}, and with BEFORE_CHECKOUT (a
# checkout of an older jamsdk, put first on PYTHONPATH: the replica imports it) OUT_DIR/before{,_heavy}.*;
# OUT_DIR/loadavg.txt has the CPU and the load between runs.
set -euo pipefail
out="${1:?usage: bash benchmarks/serve_tables.sh OUT_DIR [BEFORE_CHECKOUT]}"
before="${2:-}"
mkdir -p "$out"
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/_machine.sh
source benchmarks/_machine.sh
note start
machine_line
run() { name="$1"; shift; python benchmarks/serve_load.py --streams 4 --seconds 20 "$@" \
  --json "$out/$name.json" --markdown "$out/$name.md"; note "after $name"; }
if [ -n "$before" ]; then
  PYTHONPATH="$before" run before --rounds 2 --no-proxy-guard  # an older jamsdk has no guard to load
  PYTHONPATH="$before" run before_heavy --rounds 2 --no-proxy-guard --attacks heavy --pace lockstep --hostile-clients 2
fi
run flood --rounds 3
run lockstep --rounds 3 --pace lockstep
run heavy --rounds 3 --attacks heavy --pace lockstep --hostile-clients 2
run hammer --rounds 2 --retry-pause 0
run hammer_noguard --rounds 2 --retry-pause 0 --no-proxy-guard
