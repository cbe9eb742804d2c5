#!/usr/bin/env bash
# Profiles one benchmark case: where the time goes (exp throughput, bandwidth or reduction
# latency). See docs/benchmarks.md, "Profiling".
#
#   scripts/profile.sh [perf|callgrind] [-- COMMAND...]
#   scripts/profile.sh loops [OBJECT [FUNCTION_REGEX]]
#
# COMMAND defaults to the CLI benchmark of our softmax on 4096x1024 f32, 1 thread:
#   ${SOFTMAX_BIN:-build-bench/tools/softmax} bench --op softmax --shape 4096x1024 --min-time 3
# e.g. scripts/profile.sh perf -- build-bench/bench/cpu_compare --no-python \
#        --filter 'dram/32x131072/f32/t1' --rounds 30
#
# perf (default): `perf stat` with software events (task-clock, context switches, page faults)
#   and, where the machine exposes a PMU, instructions/cycles/cache misses; then a sampling
#   profile (`perf record -e cpu-clock`, a timer, so it works without a PMU, e.g. in a VM) and the
#   top symbols. Output in ${PROFILE_DIR:-/tmp/softmax-profile}.
# loops: the static instruction count of every loop of the AVX-512 kernels, for machines with no
#   PMU: objdump of OBJECT (default the softmax kernels' object in build-bench), functions whose
#   demangled name matches FUNCTION_REGEX (default N_AVX3 softmax-row kernels); a loop is the
#   range from a backward conditional jump's target to the jump, innermost loops only. Per loop: instructions, those on zmm
#   registers (vector), loads, stores. Divide by the elements one iteration handles (count the
#   loads of the input) to get instructions per 16 elements.
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
if [ $# -eq 0 ] && [ "$mode" != loops ]; then
  bin=${SOFTMAX_BIN:-build-bench/tools/softmax}
  if [ "$mode" = callgrind ]; then
    set -- "$bin" bench --op softmax --shape 64x1024 --cache hot --min-time 0
  else
    set -- "$bin" bench --op softmax --shape 4096x1024 --min-time 3
  fi
fi

case "$mode" in
  loops)
    obj=${1:-build-bench/CMakeFiles/softmax.dir/src/cpu/softmax_stats_kernels.cc.o}
    regex=${2:-N_AVX3::.*(Normalize|RowStats|Softmax|Exp|Block|Pass)}
    [ -f "$obj" ] || { echo "profile.sh: $obj not found (build build-bench first)" >&2; exit 1; }
    objdump -d -C --no-show-raw-insn "$obj" | /usr/bin/python3 -c '
import re, sys
regex = re.compile(sys.argv[1])
fn, body = None, []
def report(fn, body):
    if fn is None or not regex.search(fn):
        return
    addrs = [a for a, _ in body]
    loops = []
    for i, (a, ins) in enumerate(body):
        m = re.match(r"j\w+\s+([0-9a-f]+)", ins)
        if not m or ins.startswith("jmp"):
            continue
        target = int(m.group(1), 16)
        if target <= a and target in addrs:
            loops.append((addrs.index(target), i))
    for b, e in loops:
        if any(b <= b2 and e2 <= e and (b2, e2) != (b, e) for b2, e2 in loops):
            continue  # an outer loop: only innermost loops are hot
        target, a = body[b][0], body[e][0]
        loop = body[b:e + 1]
        vec = sum("zmm" in x for _, x in loop)
        loads = sum("zmm" in x and "(" in x.split(",")[0] and not x.startswith("vmovnt") and
                    not re.match(r"vmov\w*\s+%zmm", x) for _, x in loop)
        stores = sum(re.match(r"vmov\w*\s+%zmm\d+,\s*\S*\(", x) is not None or
                     x.startswith("vmovnt") for _, x in loop)
        print(f"{len(loop):4d} insns {vec:4d} zmm {loads:3d} zmm-loads {stores:3d} stores  "
              f"{target:#x}-{a:#x}  {fn[:110]}")
for line in sys.stdin:
    h = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
    if h:
        report(fn, body)
        fn, body = h.group(1), []
        continue
    m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
    if m:
        body.append((int(m.group(1), 16), m.group(2).strip()))
report(fn, body)
' "$regex"
    ;;
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
    echo "usage: scripts/profile.sh [perf|callgrind] [-- COMMAND...] | loops [OBJECT [REGEX]]" >&2
    exit 2
    ;;
esac
