#!/usr/bin/env bash
# Benchmark: `cfgmx generate` of every format for a 1,000-variant matrix, against a peer
# measured in the same run on the same matrix (`cfgmx expand --json`, which expands and
# resolves the same variants and prints them). Prints milliseconds and the ratio.
# Usage: bench/generate.sh [RUNS]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
cargo build -q --release -p cfgmx
bin=${CARGO_TARGET_DIR:-target}/release/cfgmx
# BENCH_TMP=/dev/shm measures rendering and writing without the disk's file-creation cost.
work=$(mktemp -d -p "${BENCH_TMP:-/tmp}")
trap 'rm -rf "$work"' EXIT

parts=$(seq -s, 1 125 | sed 's/[0-9]\+/"p&"/g')
cat > "$work/m1000.toml" <<TOML
name = "m1000"
languages = ["c", "fortran"]
[axes]
compiler = ["gcc", "clang"]
blas = ["sequential", "threaded"]
build = ["debug", "release"]
part = [$parts]
[values.compiler.clang]
fortran = "gcc"
[blas]
prefer = ["openblas"]
TOML

# A profile from what is installed, so concretisation is part of the measurement.
t=$(gcc -dumpmachine)
cat > "$work/profile.json" <<JSON
{"schema":1,"cpus":2,"compilers":[
 {"path":"$(command -v gcc)","family":"gcc","version":"$(gcc -dumpfullversion)","languages":["c"]},
 {"path":"$(command -v gfortran)","family":"gcc","version":"$(gfortran -dumpfullversion)","languages":["fortran"]},
 {"path":"$(command -v clang)","family":"clang","version":"$(clang -dumpversion)","languages":["c"]}],
"blas":[
 {"path":"/usr/lib/$t/openblas-serial/libopenblas.so","provider":"openblas","build":"serial","threading":"sequential","lib_dir":"/usr/lib/$t/openblas-serial"},
 {"path":"/usr/lib/$t/openblas-pthread/libopenblas.so","provider":"openblas","build":"pthread","threading":"pthread","lib_dir":"/usr/lib/$t/openblas-pthread"},
 {"path":"/usr/lib/$t/openblas-openmp/libopenblas.so","provider":"openblas","build":"openmp","threading":"openmp","lib_dir":"/usr/lib/$t/openblas-openmp"}]}
JSON

formats="cmake-presets cmake-toolchain cmake-cache meson-native bento scikit-build-core meson-python env lmod github gitlab slurm"
now() { date +%s%N; }
best_gen=""; best_peer=""
for r in $(seq 1 "$runs"); do
  rm -rf "$work/out"
  t0=$(now)
  for f in $formats; do
    "$bin" generate "$work/m1000.toml" -f "$f" --profile "$work/profile.json" -o "$work/out" --force >/dev/null 2>&1
  done
  t1=$(now)
  for f in $formats; do
    "$bin" expand "$work/m1000.toml" --json >/dev/null 2>&1
  done
  t2=$(now)
  gen=$(( (t1 - t0) / 1000 )); peer=$(( (t2 - t1) / 1000 ))
  if [ -z "$best_gen" ] || [ "$gen" -lt "$best_gen" ]; then best_gen=$gen; fi
  if [ -z "$best_peer" ] || [ "$peer" -lt "$best_peer" ]; then best_peer=$peer; fi
done
files=$(find "$work/out" -type f ! -name .cfgmx-generated | wc -l)
awk -v g="$best_gen" -v p="$best_peer" -v n="$files" 'BEGIN {
  printf "generate, 11 formats, 1000 variants (%d files): %.1f ms (best of runs)\n", n, g / 1000
  printf "peer: expand --json x 11, same matrix:          %.1f ms\n", p / 1000
  printf "ratio generate / peer: %.2f   target: generate < 100 ms\n", g / p
}'
