#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo-fuzz + libFuzzer) and runs each for a short time on a
# copy of its committed corpus, so a smoke run never grows fuzz/corpus. A crash, panic, hang
# (-timeout) or memory blow-up (-rss_limit_mb) fails the script; the input is left in
# fuzz/artifacts/<target>/. Long runs: see the README's "Fuzzing".
#
#   FUZZ_SECONDS=15 scripts/fuzz-smoke.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-15}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz passes -Z flags (sanitizers): allow them on the stable toolchain.
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -O # every target: one cargo build shares the dependencies
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -R "fuzz/corpus/$t/." "$work/$t/"
    fi
    echo "fuzz-smoke: $t for ${secs}s"
    if ! ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16} cargo fuzz run -O "$t" "$work/$t" -- -max_total_time="$secs" -rss_limit_mb=512 \
        -timeout=10 -print_final_stats=1 >"$work/$t.log" 2>&1; then
        tail -n 60 "$work/$t.log" >&2
        echo "fuzz-smoke: $t FAILED (input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    grep -E '^(Done|stat::(number_of_executed_units|peak_rss_mb))' "$work/$t.log" || true
done
echo "fuzz-smoke: ${#targets[@]} target(s) ran ${secs}s each without a finding"
