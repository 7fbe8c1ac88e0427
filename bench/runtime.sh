#!/usr/bin/env bash
# Runtime axes against what a CI matrix does: the same 8 variants of tests/projects/rt-threads
# (gcc, clang x openmp on/off x debug/release), tested at 1 and 2 threads.
#   cfgmx [runtime]: one `cfgmx build` with `[runtime] threads = [1, 2]`: 8 builds, 16 test runs.
#   separately     : each thread count its own build of every variant, as CI matrix jobs
#                    (one job per variant and count) would: two `cfgmx build` runs with
#                    `threads = 1` and `threads = 2`, each from a clean build root: 16 builds,
#                    16 test runs.
# Both sides get the same scheduler and core budget, so the difference is the builds repeated.
# Prints wall and CPU seconds of each side, side by side, and the ratio separately / runtime.
# Usage: bench/runtime.sh [CORES]   (default: nproc; needs python3, cmake, ninja, gcc, clang)
#        CFGMX=path/to/cfgmx bench/runtime.sh   (else a release cfgmx is built)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cores=${1:-$(nproc)}
target=${CARGO_TARGET_DIR:-$repo/target}
if [ -z "${CFGMX:-}" ]; then
    cargo build -q --release -p cfgmx
    CFGMX=$target/release/cfgmx   # as users run it
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export CFGMX_CACHE_DIR=$tmp/probe-cache
measure() { python3 "$repo/bench/measure.py" "$@"; }

cd "$tmp"
"$CFGMX" probe >/dev/null   # warm the probe cache: neither side pays for it

axes='languages = ["c"]
[axes]
compiler = ["gcc", "clang"]
blas = ["none"]
openmp = ["on", "off"]
build = ["debug", "release"]'
printf 'name = "rt"\n%s\n[runtime]\nthreads = [1, 2]\n' "$axes" > rt.toml
for t in 1 2; do printf 'name = "rt%s"\nthreads = %s\n%s\n' "$t" "$t" "$axes" > "t$t.toml"; done

# Passed rows of a --json report (the script stops when a side did not pass everything).
passed() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sum(v['status']=='passed' for v in r['variants']))" "$1"; }

echo "== 8 variants x threads 1, 2 of tests/projects/rt-threads on $cores core(s); $(uptime | sed 's/.*load/load/')"
# Two rounds, each side from clean build roots; the first round's figures are dropped: it pays
# for what is cached after it (the link tests proving each matrix's variants, the first cmake
# and compiler runs of the session), which belongs to neither side.
for round in 1 2; do
    rm -rf "$tmp/rt" "$tmp/t1" "$tmp/t2"
    r=$( { measure "$CFGMX" build rt.toml --source "$repo/tests/projects/rt-threads" -j "$cores" \
            --build-root "$tmp/rt" --json > rt.json; } 2>&1 >/dev/null | tail -1)
    [ "$(passed rt.json)" = 16 ] || { echo "cfgmx [runtime]: not all 16 points passed" >&2; exit 1; }
    s=()
    for t in 1 2; do
        s+=("$( { measure "$CFGMX" build "t$t.toml" --source "$repo/tests/projects/rt-threads" -j "$cores" \
                --build-root "$tmp/t$t" --json > "t$t.json"; } 2>&1 >/dev/null | tail -1)")
        [ "$(passed "t$t.json")" = 8 ] || { echo "separately, threads=$t: not all 8 passed" >&2; exit 1; }
    done
done

python3 - "$r" "${s[0]}" "${s[1]}" rt.json t1.json t2.json <<'PY'
import json, sys
r, s1, s2 = (json.loads(a) for a in sys.argv[1:4])
def steps(paths, name):
    n = 0
    for p in paths:
        for v in json.load(open(p))["variants"]:
            n += sum(1 for s in v["steps"] if s["step"] == name and s["status"] == "passed")
    return n
# A runtime report repeats a variant's shared build step in each point's row: count builds
# by variant, test runs by row.
rt = json.load(open(sys.argv[4]))["variants"]
rt_builds = len({v["hash"] for v in rt if any(s["step"] == "build" for s in v["steps"])})
sep_wall, sep_cpu = s1["wall"] + s2["wall"], s1["cpu"] + s2["cpu"]
print(f"{'':16}{'builds':>8}{'test runs':>11}{'wall s':>9}{'cpu s':>9}")
print(f"{'cfgmx [runtime]':16}{rt_builds:>8}{len(rt):>11}{r['wall']:>9.2f}{r['cpu']:>9.2f}")
print(f"{'separately':16}{steps(sys.argv[5:], 'build'):>8}{steps(sys.argv[5:], 'test'):>11}{sep_wall:>9.2f}{sep_cpu:>9.2f}")
print(f"separately / runtime: {sep_wall / r['wall']:.2f}x wall, {sep_cpu / r['cpu']:.2f}x cpu")
PY
