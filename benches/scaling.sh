#!/usr/bin/env bash
# Builds the scaling bench (benches/scaling.rs) as a static binary and stages it, with a runner,
# in target/device/, to copy to (or carry onto) a many-core machine that has no Rust toolchain:
#
#   bash benches/scaling.sh
#   # then, on the machine:  bash target/device/run.sh     (OUT=dir to get $OUT/results.tgz)
#
# run.sh passes SCALING_SECS (default 1), SCALING_THREADS, SCALING_LONG_CALLS and SCALING_FILTER
# through to the bench. Safe to run again: it rebuilds (incrementally) and overwrites
# target/device/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

triple=x86_64-unknown-linux-gnu
dest=target/device

# crt-static: glibc linked in, so the binary runs wherever the kernel is Linux x86-64. An
# explicit --target keeps these flags off the build scripts and proc macros, and the artifacts
# apart from the host build's (target/$triple/).
json=$(RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo bench -p hotbreaker-benches --bench scaling --no-run --target "$triple" \
    --message-format=json-render-diagnostics)

exe=$(printf '%s\n' "$json" |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "scaling"
                  and (.target.kind | index("bench")) and .executable != null) | .executable' |
    tail -n 1)
if [[ -z "$exe" || ! -x "$exe" ]]; then
    echo "scaling.sh: cargo reported no executable for the scaling bench" >&2
    exit 1
fi

# Statically linked? `ldd` says "not a dynamic executable" (or "statically linked"); `file` says
# "static-pie linked" or "statically linked".
ldd_out=$(ldd "$exe" 2>&1 || true)
file_out=$(file -b "$exe")
if ! grep -qE 'not a dynamic executable|statically linked' <<<"$ldd_out" &&
    ! grep -qE 'static(-pie)? linked|statically linked' <<<"$file_out"; then
    echo "scaling.sh: $exe is not statically linked:" >&2
    echo "  ldd:  $ldd_out" >&2
    echo "  file: $file_out" >&2
    exit 1
fi

mkdir -p "$dest"
cp -f "$exe" "$dest/scaling.tmp"
mv -f "$dest/scaling.tmp" "$dest/scaling"
chmod +x "$dest/scaling"

cat >"$dest/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the scaling bench beside this script; results in /tmp/out (and $OUT/results.tgz when OUT
# is set). Written by benches/scaling.sh.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=/tmp/out
rm -rf "$out"
mkdir -p "$out"

pack() {
    if [[ -n "${OUT:-}" ]]; then
        mkdir -p "$OUT"
        tar czf "$OUT/results.tgz" -C "$out" .
    fi
}
# Whatever happens (a timeout's SIGTERM included), pack what there is.
trap pack EXIT
trap 'exit 143' TERM INT

{
    echo "nproc: $(nproc)"
    lscpu | grep 'Model name' || echo "Model name: (lscpu has none)"
    uname -srm
} | tee "$out/machine.txt"

SCALING_SECS=${SCALING_SECS:-1} SCALING_TSV="$out/scaling.tsv" \
    "$here/scaling" >"$out/scaling.txt" 2>"$out/scaling.err"
rc=$?
echo "exit status: $rc" >>"$out/machine.txt"

echo
cat "$out/scaling.txt"
if [[ -s "$out/scaling.err" ]]; then
    echo "--- stderr"
    cat "$out/scaling.err"
fi
exit "$rc"
RUN
chmod +x "$dest/run.sh"

echo "built $exe"
echo "  ldd:  $ldd_out"
echo "  file: $file_out"
echo "staged: $dest/scaling ($(du -h "$dest/scaling" | cut -f1)), $dest/run.sh"
