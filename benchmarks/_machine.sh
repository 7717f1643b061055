# Sourced by the *_tables.sh scripts (with $out set): the machine beside every table.
# note LABEL: the time and the load average, into $out/loadavg.txt; machine_line: the CPU and its flags.
note() { echo "$(date -u +%FT%TZ) $1: load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/loadavg.txt"; }
machine_line() {
  python - <<'PY' | tee -a "$out/loadavg.txt"
from jamsdk.runtime.sysinfo import cpu_flags, cpu_model
print("CPU:", cpu_model(), "| flags:", " ".join(cpu_flags()))
PY
}
