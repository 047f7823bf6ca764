#!/usr/bin/env bash
# Shared writes per 1 000 calls: atomic writes (stores, read-modify-writes, compare-exchanges,
# failed ones included) to 128-byte lines that more than one thread writes, for every rule set
# at 0 %, 1 % and 10 % Failures on 1, 4 and 16 threads. Counted by the
# `--cfg hotbreaker_count_writes` shim in src/sync.rs, so the numbers are the same on any machine
# (tests/shared_writes.rs). Prints the table; fails if a rule set writes a shared line at 0 %
# Failures, or more than the test's bound at 1 %, or if calls that find no chunk of cells to take
# write the breaker's own lines (tests/chunk_reserve_writes.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg hotbreaker_count_writes ${RUSTFLAGS:-}"
# A separate target dir: the cfg rebuilds every crate, and sharing target/ would throw away the
# normal build's cache on every switch.
exec cargo test -p hotbreaker --release --target-dir target/count-writes --test shared_writes \
    --test chunk_reserve_writes \
    -- --nocapture --test-threads=1 "$@"
