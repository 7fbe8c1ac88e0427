#!/usr/bin/env bash
# Expansion + resolution + hashing throughput, streamed as JSON lines, and peak memory.
#
# Runs `cfgmx expand --jsonl` on 10^5, 10^6 and 10^7-variant matrices (label axes over the
# role axes, as a parameter sweep has), and a peer in the same run: a Python script doing
# the least a hand-written tool would (itertools.product, one json.dumps and one SHA-256 per
# variant, no descriptor resolution). Prints variants/s, peak RSS and the ratio to the peer.
# Usage: bench/expand.sh            (needs python3; builds cfgmx --release)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p cfgmx
bin=target/release/cfgmx
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# 10^5: drop one 10-value axis; 10^7: add one.
sed 's/^seed = .*$//' bench/million.toml | sed 's/^name = .*/name = "hundredk"/' > "$tmp/1e5.toml"
cp bench/million.toml "$tmp/1e6.toml"
{ cat bench/million.toml; } | sed 's/^name = .*/name = "tenmillion"/' \
  | sed 's/^\[axes\]$/[axes]\nrep = ["a","b","c","d","e","f","g","h","i","j"]/' > "$tmp/1e7.toml"

measure() { # $1 = matrix, $2 = expected count
  local out
  out=$( { /usr/bin/time -f "%e %U %M" "$bin" expand "$1" --jsonl | wc -l; } 2>&1 )
  local n wall user rss
  n=$(echo "$out" | grep -v ' ' | tail -1)
  read -r wall user rss < <(echo "$out" | grep ' ' | tail -1)
  [ "$n" = "$2" ] || { echo "expected $2 variants, got $n" >&2; exit 1; }
  printf '%-10s %9s variants  %6.2f s wall  %6.2f s cpu  %10.0f variants/s (cpu)  peak RSS %6.1f MB\n' \
    "$(basename "$1" .toml)" "$n" "$wall" "$user" "$(awk "BEGIN{print $n / $user}")" "$(awk "BEGIN{print $rss / 1024}")"
  echo "$user" > "$tmp/user.$(basename "$1" .toml)"
}

echo "cfgmx expand --jsonl (one thread):"
measure "$tmp/1e5.toml" 100000
measure "$tmp/1e6.toml" 1000000
measure "$tmp/1e7.toml" 10000000

cat > "$tmp/peer.py" <<'PY'
import hashlib, itertools, json, sys
axes = {
  "compiler": ["gcc", "clang", "icc", "pgi", "xl"], "blas": ["sequential", "threaded"],
  "build": ["debug", "release"], "n": [str(i) for i in range(1, 11)],
  "block": [str(8 << i) for i in range(10)], "layout": ["r%d" % i for i in range(10)],
  "seed": ["s%d" % i for i in range(10)], "index": ["lp64", "ilp64", "i32", "i64", "ix"],
}
out = sys.stdout
names = list(axes)
for i, combo in enumerate(itertools.product(*axes.values())):
    d = dict(zip(names, combo))
    h = hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    out.write(json.dumps({"index": i, "name": "-".join(combo), "hash": h, "axes": d}) + "\n")
PY
peer=$( { /usr/bin/time -f "%e %U %M" python3 "$tmp/peer.py" | wc -l; } 2>&1 | grep " " | tail -1)
read -r pwall puser prss <<<"$peer"
printf 'peer (python product+json+sha256, 10^6, no resolution): %6.2f s cpu, %10.0f variants/s\n' "$puser" "$(awk "BEGIN{print 1000000 / $puser}")"
printf 'ratio cfgmx/peer throughput at 10^6: %.1fx\n' "$(awk "BEGIN{print $puser / $(cat "$tmp/user.1e6")}")"
