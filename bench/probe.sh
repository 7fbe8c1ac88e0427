#!/usr/bin/env bash
# Benchmark: `cfgmx probe` against CMake establishing the same facts on this machine.
#
# CMake side: for each toolchain on the machine (every gcc-N with its g++-N/gfortran-N, every
# clang-N with clang++-N and flang-new-N where it links) a fresh configure of a project that
# runs find_package(OpenMP) and find_package(BLAS) -- CMake's way to learn each compiler's
# identity, OpenMP flag and a BLAS; and for a flang-new-N that cannot link (flang-new-16), the
# Fortran-only configure that fails, CMake's way to learn what the probe reports about it. cfgmx side: one cold `cfgmx probe --fresh` that
# establishes those facts for every compiler path at once (plus MPI wrappers and every BLAS
# build's threading and integer width), then warm `cfgmx probe` runs answered from the cache.
#
# Prints each timing, the two ratios (targets: cold >= 10x faster than the CMake total; warm
# under 20 ms) and how many processes a cold probe starts (with strace): its CPU time is mostly
# the start-up of clang, flang and ld, one per compile or link the facts need. Usage: bench/probe.sh [RUNS]   (CFGMX=path/to/cfgmx to skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

if [ -z "${CFGMX:-}" ]; then
  cargo build --release -q -p cfgmx
  CFGMX="${CARGO_TARGET_DIR:-target}/release/cfgmx"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CFGMX_CACHE_DIR="$work/cache"

now() { date +%s.%N; }
# seconds elapsed since $1, to the millisecond
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# "WALL CPU" of a command (CPU = user + sys of it and its children); its output is discarded
timed() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" > /dev/null 2> "$work/last.err"; } 2>&1 ) || { cat "$work/last.err"; exit 1; }
  awk '{ printf "%.3f %.3f", $1, $2 + $3 }' <<< "$t"
}
# the same for a command expected to fail: its timing, and its exit status
timed_any() {
  local TIMEFORMAT='%R %U %S' t rc
  t=$( { time "$@" > /dev/null 2> "$work/last.err"; } 2>&1 ) && rc=0 || rc=$?
  t=$(tail -n 1 <<< "$t")
  awk '{ printf "%.3f %.3f", $1, $2 + $3 }' <<< "$t"
  return "$rc"
}

cmake_configure() { # name C CXX [Fortran]   (C "-": a Fortran-only project)
  local name=$1 cc=$2 cxx=$3 fc=${4:-}
  local src="$work/src-$name" langs="C CXX"
  mkdir -p "$src"
  [ -n "$fc" ] && langs="C CXX Fortran"
  [ "$cc" = - ] && langs="Fortran"
  # not REQUIRED: a clang without its version's libomp is a finding, as it is for cfgmx
  cat > "$src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(cfgmx_bench LANGUAGES $langs)
find_package(OpenMP)
find_package(BLAS REQUIRED)
CMAKE
  local args=(-S "$src" -B "$work/build-$name" -G Ninja)
  [ "$cc" != - ] && args+=(-DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx")
  [ -n "$fc" ] && args+=(-DCMAKE_Fortran_COMPILER="$fc")
  rm -rf "$work/build-$name"
  if [ "$cc" = - ]; then
    # expected to fail: CMake's way to learn that this Fortran compiler cannot link
    ! timed_any cmake "${args[@]}" > "$work/last.time" || { echo "$fc configured?" >&2; exit 1; }
    cat "$work/last.time"
  else
    timed cmake "${args[@]}"
  fi
}

# The toolchains: name C CXX Fortran ("" when the family's Fortran compiler cannot link).
links_fortran() { printf 'program p\nend program p\n' > "$work/p.f90" && "$1" "$work/p.f90" -o "$work/p" > /dev/null 2>&1; }
toolchains=()
for cc in $(compgen -c | grep -E '^gcc-[0-9]+$' | sort -u); do
  v=${cc#gcc-}; fc=""
  command -v "g++-$v" > /dev/null || continue
  command -v "gfortran-$v" > /dev/null && fc="gfortran-$v"
  toolchains+=("$cc $cc g++-$v $fc")
done
for cc in $(compgen -c | grep -E '^clang-[0-9]+$' | sort -u); do
  v=${cc#clang-}; fc=""
  command -v "clang++-$v" > /dev/null || continue
  if command -v "flang-new-$v" > /dev/null; then
    if links_fortran "flang-new-$v"; then
      fc="flang-new-$v"
    else
      # The probe reports this Fortran compiler as unusable ("cannot build a plain program");
      # CMake learns that from a Fortran-only configure that fails.
      toolchains+=("flang-new-$v - - flang-new-$v")
    fi
  fi
  toolchains+=("$cc $cc clang++-$v $fc")
done

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); toolchains: ${#toolchains[@]}"
declare -A tw tc
cold_w=(); cold_c=()
for i in $(seq "$runs"); do
  for t in "${toolchains[@]}"; do
    read -r name cc cxx fc <<< "$t"
    read -r w c <<< "$(cmake_configure "$name" "$cc" "$cxx" "$fc")"
    tw[$name]+="$w "; tc[$name]+="$c "
  done
  read -r w c <<< "$(timed "$CFGMX" probe --fresh --json)"; cold_w+=("$w"); cold_c+=("$c")
done
"$CFGMX" probe --json > "$work/profile.json"
med() { printf '%s\n' "$@" | median; }
cmake_s=0; cmake_cpu=0
for t in "${toolchains[@]}"; do
  read -r name _ <<< "$t"
  # shellcheck disable=SC2086
  w=$(med ${tw[$name]}); c=$(med ${tc[$name]})
  cmake_s=$(awk -v a="$cmake_s" -v b="$w" 'BEGIN { printf "%.3f", a + b }')
  cmake_cpu=$(awk -v a="$cmake_cpu" -v b="$c" 'BEGIN { printf "%.3f", a + b }')
done
cold_s=$(med "${cold_w[@]}")
cold_cpu=$(med "${cold_c[@]}")

# warm: many runs, mean
n=50
t=$(now)
for _ in $(seq $n); do "$CFGMX" probe --json > /dev/null; done
warm_ms=$(awk -v s="$(since "$t")" -v n=$n 'BEGIN { printf "%.1f", s * 1000 / n }')

execs="n/a (no strace)"; cold_execs="n/a (no strace)"
if command -v strace > /dev/null; then
  execs=$(strace -f -e trace=execve -o "$work/strace" "$CFGMX" probe > /dev/null 2>&1 && grep -c 'execve(' "$work/strace")
  # programs a cold probe really started (a PATH search's failed tries left out), by name:
  # where its CPU time goes is mostly how many clang/flang/ld processes start
  # (one trace file per process: concurrent execve lines are never split)
  mkdir "$work/strace-cold"
  strace -ff -e trace=execve -o "$work/strace-cold/p" "$CFGMX" probe --fresh > /dev/null 2>&1
  started() { cat "$work/strace-cold"/p.* | grep 'execve(.*= 0$' | grep -cE "${1:-.}" || true; }
  cold_execs=$(started)
  cold_llvm=$(started 'execve\("[^"]*/(clang|flang)[^"/]*"')
  cold_ld=$(started 'execve\("[^"]*/ld(\.[a-z]+)?"')
  cold_execs="$cold_execs ($cold_llvm clang/flang, $cold_ld ld)"
fi

# where a cold probe's CPU goes, by command (perf, when this machine lets it sample): the
# figures that show what is left is one compiler, linker or interpreter start per fact
cold_where="n/a (no perf)"
if command -v perf > /dev/null && perf record -q -o "$work/perf.test" true > /dev/null 2>&1; then
  perf record -q -F 4999 -o "$work/perf.data" "$CFGMX" probe --fresh > /dev/null 2>&1
  cold_where=$(perf report -i "$work/perf.data" --sort comm --stdio 2> /dev/null \
    | awk '/^ +[0-9.]+%/ { sub(/%/, "", $1); n++; if (n <= 10) printf "%s%s %.0f%%", (n > 1 ? ", " : ""), $2, $1 }')
fi

compilers=$(grep -c '"family"' "$work/profile.json" || true)
echo "CMake configure, find_package(OpenMP)+find_package(BLAS), median of $runs per toolchain (wall s):"
for t in "${toolchains[@]}"; do
  read -r name cc cxx fc <<< "$t"
  # shellcheck disable=SC2086
  label="$cc/$cxx${fc:+/$fc}"
  [ "$cc" = - ] && label="$fc (Fortran only: fails to link)"
  printf '  %-44s %s s   (runs: %s)\n' "$label" "$(med ${tw[$name]})" "${tw[$name]% }"
done
echo "  total             ${cmake_s} s wall, ${cmake_cpu} s CPU"
echo "cfgmx probe --fresh (cold, $compilers compiler paths): ${cold_s} s wall, ${cold_cpu} s CPU   (runs: ${cold_w[*]})"
echo "processes started by one cold probe: $cold_execs"
echo "its CPU by command (perf, top 10): $cold_where"
echo "cfgmx probe (warm, mean of $n): ${warm_ms} ms; processes started by one warm probe: $execs (1 = itself)"
awk -v c="$cmake_s" -v k="$cold_s" -v w="$warm_ms" -v cc="$cmake_cpu" -v kc="$cold_cpu" 'BEGIN {
  printf "ratio CMake total / cold probe: %.1fx CPU (target >= 10x), %.1fx wall\n", cc / kc, c / k
  printf "ratio CMake total / warm probe: %.0fx (warm target < 20 ms: %s)\n", c * 1000 / w, (w < 20 ? "met" : "missed")
}'
echo "(wall ratios depend on other load: CPU time is what the probe costs; on 2 idle cores the cold wall is about CPU / 2)"
