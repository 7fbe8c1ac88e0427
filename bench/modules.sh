#!/usr/bin/env bash
# `cfgmx probe --modules` on a site's module tree, against the module system's own answer.
#
# The trees are the tests' (tests/modules/lmod-tree.sh: gcc 11/12 and clang 16/19 in Core, Open
# MPI and MPICH under each, the OpenBLAS builds; envmodules-tree.sh: the smaller Environment
# Modules tree), each module command wrapped so every run is logged. For each: a cold probe
# (wall and CPU, module commands and `load`s it started, loads per candidate), then warm probes
# on the unchanged tree (mean of N; target under 20 ms, starting no module command), side by
# side with one run of the system's own listing (`module spider`/`module avail`), which is what
# a script asking the tree would pay each time.
# Usage: bench/modules.sh [N]   (CFGMX=path/to/cfgmx to skip the build; needs Lmod and
# scripts/setup.sh's unpacked Environment Modules)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
n=${1:-50}
if [ -z "${CFGMX:-}" ]; then
  cargo build --release -q -p cfgmx
  CFGMX="${CARGO_TARGET_DIR:-target}/release/cfgmx"
fi
CFGMX=$(realpath "$CFGMX")
lmod=/usr/share/lmod/lmod/libexec
em=$repo/target/envmodules/usr/lib/modulecmd.tcl
[ -x "$lmod/lmod" ] || { echo "no Lmod at $lmod (apt install lmod)" >&2; exit 1; }
[ -f "$em" ] || { echo "no $em: run scripts/setup.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
# "WALL CPU" of a command, its output discarded
timed() {
  local TIMEFORMAT='%R %U %S' t
  t=$( { time "$@" > /dev/null 2> "$work/last.err"; } 2>&1 ) || { cat "$work/last.err"; exit 1; }
  awk '{ printf "%.3f %.3f", $1, $2 + $3 }' <<< "$t"
}
# a logging stand-in for a module system's program: every run is one line of $1/runs.log
shim() { # dir name real
  printf '#!/bin/sh\necho "%s $*" >> "%s/runs.log"\nexec %s "$@"\n' "$2" "$1" "$3" > "$1/shim/$2"
  chmod +x "$1/shim/$2"
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for sys in lmod envmodules; do
  d=$work/$sys
  mkdir -p "$d/shim"
  "$repo/tests/modules/$sys-tree.sh" "$d/site" > /dev/null
  if [ $sys = lmod ]; then
    shim "$d" lmod "$lmod/lmod"; shim "$d" spider "$lmod/spider"
    var=LMOD_CMD cmd=$d/shim/lmod peer=("$lmod/lmod" bash -t spider)
  else
    shim "$d" modulecmd.tcl "$em"
    var=MODULES_CMD cmd=$d/shim/modulecmd.tcl peer=(tclsh "$em" bash -t avail)
  fi
  e=(env -i PATH=/usr/bin:/bin HOME="$d" NO_COLOR=1 "$var=$cmd" MODULEPATH="$d/site/modules/Core"
     CFGMX_CACHE_DIR="$d/cache")
  read -r cw cc <<< "$(timed "${e[@]}" "$CFGMX" probe --modules --fresh --json)"
  "${e[@]}" "$CFGMX" probe --modules --json > "$d/profile.json"
  runs=$(wc -l < "$d/runs.log")
  loads=$(grep -c ' load ' "$d/runs.log" || true)
  sets=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1])).get('modules', [])))" "$d/profile.json")
  : > "$d/runs.log"
  t=$(now)
  for _ in $(seq "$n"); do "${e[@]}" "$CFGMX" probe --modules --json > /dev/null; done
  warm=$(awk -v a="$t" -v b="$(now)" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1000 / n }')
  warm_runs=$(wc -l < "$d/runs.log")
  read -r pw _ <<< "$(timed env -i PATH=/usr/bin:/bin HOME="$d" MODULEPATH="$d/site/modules/Core" "${peer[@]}")"
  echo "$sys tree ($sets module sets found):"
  echo "  cold probe --modules --fresh: ${cw} s wall, ${cc} s CPU; $runs module commands, $loads of them loads ($(awk -v l="$loads" -v s="$sets" 'BEGIN { printf "%.1f", (s ? l / s : 0) }') per module set found)"
  echo "  warm probe --modules (mean of $n): ${warm} ms (target < 20 ms: $(awk -v w="$warm" 'BEGIN { print (w < 20 ? "met" : "missed") }')); module commands started: $warm_runs"
  echo "  the system's own listing (${peer[*]: -3}), once: $(awk -v p="$pw" 'BEGIN { printf "%.1f", p * 1000 }') ms; ratio to a warm probe: $(awk -v p="$pw" -v w="$warm" 'BEGIN { printf "%.1fx", p * 1000 / w }')"
done
