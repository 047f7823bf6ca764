#!/usr/bin/env bash
# Cache lines per call with 10 000 breakers called at random (scenario F), every contender,
# under callgrind's cache simulation: instructions, first-level data misses (reads and writes:
# the lines a call touches) and last-level misses with a simulated 1 MiB last level, per call.
# Counts, so the same on any machine. Writes target/cache_lines.tsv and prints it. Fails if a
# hotbreaker call touches more than MAX_LINES lines (a regression guard: 2.09 measured
# when it was set). CACHE_LINES_CONTENDERS picks the contenders (CI runs hotbreaker alone).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not installed: skipping cache lines"; exit 0; }
cargo bench -p hotbreaker-benches --bench cache_lines --no-run 2>&1 | tail -1
bin=$(ls -t target/release/deps/cache_lines-* | grep -v '\.d$' | head -1)
N=${CACHE_LINES_CALLS:-20000}
printf 'contender\tinstructions\tD1 misses\tLL misses (1 MiB)\n' > target/cache_lines.tsv
MAX_LINES=2.3
for c in ${CACHE_LINES_CONTENDERS:-hotbreaker failsafe recloser gobreaker-style}; do
    out=$(mktemp)
    valgrind --tool=callgrind --cache-sim=yes --LL=1048576,16,64 --toggle-collect='*measured_loop*' \
        --callgrind-out-file="$out" "$bin" "$c" "$N" >/dev/null 2>&1
    # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
    grep -E '^(summary|totals):' "$out" | head -1 | awk -v c="$c" -v n="$N" \
        '{ printf "%s\t%.0f\t%.2f\t%.2f\n", c, $2 / n, ($6 + $7) / n, ($9 + $10) / n }' >> target/cache_lines.tsv
    rm -f "$out"
done
column -t -s $'\t' target/cache_lines.tsv
awk -F'\t' -v max="$MAX_LINES" '$1 == "hotbreaker" {
    if ($3 + 0 > max + 0) { printf "hotbreaker touches %s lines per call, more than %s\n", $3, max; exit 1 }
    printf "hotbreaker: %s lines per call (at most %s)\n", $3, max
}' target/cache_lines.tsv
