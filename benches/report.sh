#!/usr/bin/env bash
# Runs the comparison in quick mode (short warm-up and measurement, all contenders in one
# process, scenario by scenario) and writes benches/RESULTS.md: the machine, the date, median
# ns/op with min–max of the samples for every contender × scenario, Mops/s for B, hotbreaker's
# speed-up over the fastest peer crate, allocations per call, and (with valgrind) instructions
# per call. About 5 minutes on 2 cores, plus the first build.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf target/criterion/A target/criterion/B target/criterion/C-* target/criterion/D \
       target/criterion/E target/criterion/F target/criterion/floors
cargo bench -p hotbreaker-benches --bench compare 2>&1 | tee target/compare.log | grep -E '^[A-Zf][^ ]*/|time:' || true
if command -v valgrind >/dev/null; then bash benches/callgrind.sh || true; fi
python3 benches/report.py > benches/RESULTS.md
echo "wrote benches/RESULTS.md"
