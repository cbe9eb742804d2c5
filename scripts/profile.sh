#!/usr/bin/env bash
# Profiles one benchmark case: where the time goes (exp throughput, bandwidth or reduction
# latency). See docs/benchmarks.md, "Profiling".
#
#   scripts/profile.sh [perf|callgrind] [-- COMMAND...]
#
# COMMAND defaults to the CLI benchmark of our softmax on 4096x1024 f32, 1 thread:
#   ${SOFTMAX_BIN:-build-bench/tools/softmax} bench --op softmax --shape 4096x1024 --min-time 3
# e.g. scripts/profile.sh perf -- build-bench/bench/softmax_bench \
#        --benchmark_filter='ours/softmax/32x131072/f32/t1' --benchmark_min_time=3
#
# perf (default): `perf stat` with software events (task-clock, context switches, page faults)
#   and, where the machine exposes a PMU, instructions/cycles/cache misses; then a sampling
#   profile (`perf record -e cpu-clock`, a timer, so it works without a PMU, e.g. in a VM) and the
#   top symbols. Output in ${PROFILE_DIR:-/tmp/softmax-profile}.
# callgrind: instruction counts per function (valgrind). Valgrind does not emulate AVX-512, so
#   Highway dispatches to AVX2 under it: counts describe the AVX2 path, not the one timed.
#   Use a small hot case (e.g. --shape 64x1024 --cache hot --min-time 0): it runs ~50x slower.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-perf}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
out=${PROFILE_DIR:-/tmp/softmax-profile}
mkdir -p "$out"
if [ $# -eq 0 ]; then
  bin=${SOFTMAX_BIN:-build-bench/tools/softmax}
  if [ "$mode" = callgrind ]; then
    set -- "$bin" bench --op softmax --shape 64x1024 --cache hot --min-time 0
  else
    set -- "$bin" bench --op softmax --shape 4096x1024 --min-time 3
  fi
fi

case "$mode" in
  perf)
    command -v perf >/dev/null || { echo "profile.sh: perf not installed (linux-perf)" >&2; exit 1; }
    hw="instructions,cycles,cache-misses"
    if perf stat -x, -e instructions true 2>&1 | grep -q "not supported\|<not counted>"; then
      echo "profile.sh: no hardware counters here (VM without a PMU): software events only" >&2
      hw=""
    fi
    perf stat -e task-clock,context-switches,cpu-migrations,page-faults${hw:+,$hw} -- "$@" \
      2> "$out/stat.txt" > "$out/stdout.txt"
    cat "$out/stdout.txt" "$out/stat.txt"
    perf record -q -e cpu-clock -F 4000 -g -o "$out/perf.data" -- "$@" > /dev/null 2>&1
    echo "== top symbols (cpu-clock samples; setup such as page clearing and filling shows too)"
    perf report -i "$out/perf.data" --stdio --no-children --sort symbol 2>/dev/null |
      grep -v '^#' | grep '%' | head -25 | cut -c1-160
    echo "profile.sh: full data in $out/perf.data (perf report -i $out/perf.data)"
    ;;
  callgrind)
    command -v valgrind >/dev/null || { echo "profile.sh: valgrind not installed" >&2; exit 1; }
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" -- "$@" \
      > "$out/stdout.txt" 2> "$out/valgrind.txt"
    cat "$out/stdout.txt"
    callgrind_annotate "$out/callgrind.out" 2>/dev/null | sed -n '/file:function/,$p' |
      head -25 | cut -c1-160
    echo "profile.sh: note: under valgrind the kernels run the AVX2 target (no AVX-512 emulation)"
    echo "profile.sh: full data in $out/callgrind.out (callgrind_annotate $out/callgrind.out)"
    ;;
  *)
    echo "usage: scripts/profile.sh [perf|callgrind] [-- COMMAND...]" >&2
    exit 2
    ;;
esac
