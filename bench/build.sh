#!/usr/bin/env bash
# cfgmx build against the obvious peer: the same cmake/ninja/ctest commands in a shell loop,
# one variant after another. Same 8 variants (tests/matrices/gcc-clang.toml) of the same real
# project (tests/projects/omp-blas), same generated toolchain and cache files (taken from the
# cfgmx.lock the build writes), both from a clean build dir.
#
# Prints wall times, the ratio of cfgmx's wall time to the ideal (CPU time of all steps /
# cores), the speed-up over the loop, and the peak number of compiler processes running at
# once (must not exceed the core budget). Then an OpenMP-heavy test suite (bench/omp-heavy)
# tested by cfgmx build against `ctest -j N` with no thread cap, the oversubscription cfgmx
# avoids.
# Usage: bench/build.sh [CORES]   (default: nproc; needs python3, cmake, ninja, gcc, clang)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cores=${1:-$(nproc)}
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build -q --release -p cfgmx
bin=$target/release/cfgmx   # as users run it: a debug cfgmx adds 0.25 s of serial set-up
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export CFGMX_CACHE_DIR=$tmp/probe-cache
measure() { python3 "$repo/bench/measure.py" "$@"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }

cd "$tmp"
"$bin" probe >/dev/null   # warm the probe cache: neither side pays for it

echo "== 8 variants of tests/projects/omp-blas on $cores core(s); $(uptime | sed 's/.*load/load/') (others' load skews the ideal)"
trap 'rm -rf "$tmp"; echo "load at the end: $(uptime | sed "s/.*load average: //")"' EXIT
m=$( { measure "$bin" build "$repo/tests/matrices/gcc-clang.toml" --source "$repo/tests/projects/omp-blas" \
        -j "$cores" --build-root "$tmp/cfgmx" --json > "$tmp/cfgmx.json"; } 2>&1 >/dev/null | tail -1)
passed=$(python3 -c "import json; r=json.load(open('$tmp/cfgmx.json')); print(sum(v['status']=='passed' for v in r['variants']))")
[ "$passed" = 8 ] || { echo "cfgmx build: only $passed of 8 passed" >&2; exit 1; }
# Again from clean build dirs, but with the first run's records: cfgmx starts the longest
# variants first (a first run has no durations to go by).
mkdir -p "$tmp/cfgmx2" && cp -r "$tmp/cfgmx/records" "$tmp/cfgmx2/"
h=$( { measure "$bin" build "$repo/tests/matrices/gcc-clang.toml" --source "$repo/tests/projects/omp-blas" \
        -j "$cores" --build-root "$tmp/cfgmx2" --force --json > "$tmp/cfgmx2.json"; } 2>&1 >/dev/null | tail -1)

# The loop: for each variant of the lock, the toolchain + cache files cfgmx used, then
# configure, build (ninja's default -j), test, in sequence.
python3 - "$tmp/cfgmx.lock" "$tmp/loop" > "$tmp/loop.sh" <<'PY'
import json, os, shlex, sys
lock, out = json.load(open(sys.argv[1])), sys.argv[2]
print("set -e")
for h, j in sorted(lock["variants"].items(), key=lambda kv: kv[1]["name"]):
    d = os.path.join(out, j["name"]); os.makedirs(d, exist_ok=True)
    for k, name in [("cmake-toolchain", "toolchain.cmake"), ("cmake-cache", "cache.cmake")]:
        open(os.path.join(d, name), "w").write(j["files"][k])
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in j["env"].items())
    print(f"cmake -S \"$SRC\" -B {d}/b -G Ninja -DCMAKE_TOOLCHAIN_FILE={d}/toolchain.cmake -C {d}/cache.cmake > {d}/log 2>&1")
    print(f"cmake --build {d}/b >> {d}/log 2>&1")
    print(f"{env} ctest --test-dir {d}/b --output-on-failure >> {d}/log 2>&1")
PY
l=$( { SRC="$repo/tests/projects/omp-blas" measure bash "$tmp/loop.sh"; } 2>&1 | tail -1)
[ "$(field "$l" code)" = 0 ] || { echo "the loop failed" >&2; exit 1; }

python3 - "$m" "$l" "$cores" "$h" "$tmp/cfgmx.json" "$tmp/cfgmx2.json" <<'PY'
import json, sys
m, l, cores, h = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
ideal = m["cpu"] / cores
print(f"cfgmx build : {m['wall']:6.2f} s wall, {m['cpu']:6.2f} s cpu, peak {m['peak_compilers']} compilers at once (budget {cores})")
print(f"  with the first run's durations (longest first), clean dirs: {h['wall']:6.2f} s wall, {h['cpu']:6.2f} s cpu, "
      f"/ ideal = {h['wall'] / (h['cpu'] / cores):.2f}, peak {h['peak_compilers']} compilers")
print(f"shell loop  : {l['wall']:6.2f} s wall, {l['cpu']:6.2f} s cpu, peak {l['peak_compilers']} compilers at once")
print(f"ideal (cpu / cores) = {ideal:.2f} s; cfgmx / ideal = {m['wall'] / ideal:.2f} (target <= 1.15)")
print(f"loop / cfgmx = {l['wall'] / m['wall']:.2f}x (target > 1); loop / ideal = {l['wall'] / (l['cpu'] / cores):.2f}")
# Packing, independent of others' load: core-seconds the steps held / (wall x cores).
def held(path):
    r = json.load(open(path))
    h = sum(s["duration_s"] * max(s.get("cores", 1), 1) for v in r["variants"] for s in v["steps"])
    return h / (r["wall_s"] * cores)
print(f"cores held by steps / budget over the run: {held(sys.argv[5]):.2f} (first run), {held(sys.argv[6]):.2f} (with durations)")
print(f"peak compilers within budget: {'yes' if max(m['peak_compilers'], h['peak_compilers']) <= cores else 'NO'}")
PY

echo
echo "== OpenMP-heavy test suite (bench/omp-heavy: 4 tests x 20000 parallel regions), $cores core(s)"
o=$("$bin" build "$repo/tests/matrices/gcc-clang.toml" --source "$repo/bench/omp-heavy" --only gcc-threaded-release \
      -j "$cores" --build-root "$tmp/omp" --json 2>/dev/null)
read -r tcfgmx bdir < <(python3 -c "
import json,sys; v=json.loads(sys.argv[1])['variants'][0]
t=[s for s in v['steps'] if s['step']=='test'][0]; assert t['status']=='passed', t
print(t['duration_s'], '$tmp/omp/' + t['log'].split('/')[0] + '/build')" "$o")
c=$( { env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS python3 "$repo/bench/measure.py" ctest --test-dir "$bdir" -j "$cores" >/dev/null; } 2>&1 | tail -1)
python3 - "$tcfgmx" "$c" "$cores" <<'PY'
import json, sys
t, c, cores = float(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
print(f"cfgmx build test step (threads capped by the budget): {t:6.2f} s")
print(f"ctest -j {cores}, OMP_NUM_THREADS unset ({cores} tests x {cores} threads): {c['wall']:6.2f} s")
print(f"oversubscription avoided: {c['wall'] / t:.1f}x")
PY
