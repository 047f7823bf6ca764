#!/usr/bin/env bash
# Model-checks hotbreaker's atomics with loom.
#
# LOOM_MAX_PREEMPTIONS bounds how many times a thread may be preempted in one explored
# execution. 3 covers the races these models target (a late permit crossing a whole cycle of
# transitions, two threads each interrupted mid-CAS-loop) and still runs in seconds on 2 cores.
# The release profile with debug assertions keeps the checks on and the models fast.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export RUSTFLAGS="--cfg hotbreaker_loom ${RUSTFLAGS:-}"
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
# A separate target dir: the cfg rebuilds every crate, and sharing target/ would throw away
# the normal build's cache on every switch.
exec cargo test --manifest-path loom-tests/Cargo.toml --release --target-dir target/loom "$@"
