#!/usr/bin/env bash
# Instructions per call for scenarios A, C and D, every contender (and hotbreaker with a recorder
# beside it, every call or 1 in 100 recorded; hotbreaker's tower layer without and with per-call
# telemetry), under callgrind: repeatable
# numbers on a noisy machine. Writes target/callgrind.tsv and prints it. The `empty` contender is
# the measuring loop around a call that does nothing: a contender's own work is its count minus
# the empty one's. `hotbreaker/other-thread`: a call by a thread other than the breaker's first
# caller, the path of every calling thread but one. Fails if hotbreaker's count, either
# thread's, in any scenario grows more than 10 % over benches/callgrind-baseline.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not installed: skipping instruction counts"; exit 0; }
cargo bench -p hotbreaker-benches --bench instructions --no-run 2>&1 | tail -1
bin=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
N=${CALLGRIND_CALLS:-20000}
count_in() { # binary args... -> total instructions
    local out; out=$(mktemp)
    valgrind --tool=callgrind --toggle-collect='*measured_loop*' --callgrind-out-file="$out" \
        "$@" >/dev/null 2>&1
    grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}'
    rm -f "$out"
}
count() { count_in "$bin" "$@"; } # contender scenario calls -> total instructions
printf 'contender\tA\tC\tD\n' > target/callgrind.tsv
for c in empty hotbreaker hotbreaker+recording hotbreaker+recording/100 hotbreaker-tower hotbreaker-tower+telemetry hotbreaker-tower+telemetry+spans failsafe recloser circuitbreaker-rs gobreaker-style tower-resilience; do
    row="$c"
    for s in A C D; do
        full=$(count "$c" "$s" "$N")
        row="$row\t$(( full / N ))"
    done
    printf "$row\n" >> target/callgrind.tsv
done
# A call by a thread other than the breaker's first caller (its own binary, see other_thread.rs):
# the path of every calling thread but one. An Open rejection (C) reads no stripe: "-".
cargo bench -p hotbreaker-benches --bench other_thread --no-run 2>&1 | tail -1
other=$(ls -t target/release/deps/other_thread-* | grep -v '\.d$' | head -1)
printf 'hotbreaker/other-thread\t%s\t-\t%s\n' \
    $(( $(count_in "$other" A "$N") / N )) $(( $(count_in "$other" D "$N") / N )) >> target/callgrind.tsv
column -t -s $'\t' target/callgrind.tsv
python3 - <<'PY'
# Regression guard: hotbreaker's counts against the committed baseline (benches/callgrind-baseline.tsv,
# measured on the same code path), with 10 % slack for compiler changes. Also shows the leanest peer.
rows = lambda f: {r[0]: [None if x == "-" else int(x) for x in r[1:]] for r in (l.rstrip("\n").split("\t") for l in open(f)) if r[0] != "contender"}
now, base = rows("target/callgrind.tsv"), rows("benches/callgrind-baseline.tsv")
hot = now.pop("hotbreaker")
other = now.pop("hotbreaker/other-thread")
empty = now.pop("empty")
recording = {k: now.pop(k) for k in ("hotbreaker+recording", "hotbreaker+recording/100")}
layer = {k: now.pop(k) for k in ("hotbreaker-tower", "hotbreaker-tower+telemetry", "hotbreaker-tower+telemetry+spans")}
failed = False
def guard(row, name, i):
    """Whether `row`'s count in scenario `i` is within 10 % of baseline row `name`'s; prints it."""
    limit = base[name][i] * 1.10
    ok = row[i] <= limit
    return ok, f"(baseline {base[name][i]}, limit {limit:.0f}) {'ok' if ok else 'REGRESSION'}"
for i, s in enumerate("ACD"):
    leanest = min(now.items(), key=lambda kv: kv[1][i])
    ok, verdict = guard(hot, "hotbreaker", i)
    failed |= not ok
    print(f"{s}: hotbreaker {hot[i]} instructions/call, {hot[i] - empty[i]} of its own after the loop's {empty[i]} "
          f"{verdict}; leanest peer {leanest[0]} {leanest[1][i]} ({leanest[1][i] - empty[i]} of its own)")
    if other[i] is not None:
        ok, verdict = guard(other, "hotbreaker/other-thread", i)
        failed |= not ok
        print(f"{s}: hotbreaker on a thread other than its first caller {other[i]} instructions/call, "
              f"+{other[i] - hot[i]} over the first caller's {verdict}")
for k, v in recording.items():
    print(f"{k}: " + ", ".join(f"{s} +{v[i] - hot[i]}" for i, s in enumerate("ACD")) + " instructions/call over hotbreaker alone")
off = layer.pop("hotbreaker-tower")
print("hotbreaker-tower (the layer, telemetry off): " + ", ".join(f"{s} {off[i]}" for i, s in enumerate("ACD")))
for k, v in layer.items():
    print(f"{k}: " + ", ".join(f"{s} +{v[i] - off[i]}" for i, s in enumerate("ACD")) + " instructions/call over the layer without telemetry")
raise SystemExit(1 if failed else 0)
PY
