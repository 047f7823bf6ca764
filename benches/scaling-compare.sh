#!/usr/bin/env bash
# Stages the scaling bench of this checkout and of an earlier commit side by side for a run on a
# bigger machine (see benches/scaling.sh): target/device/scaling and target/device/scaling-before,
# and target/device/compare.sh, which runs both with the same settings into /tmp/out and packs
# $OUT/results.tgz. Usage: bash benches/scaling-compare.sh <commit>
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bash benches/scaling-compare.sh <commit>}
bash benches/scaling.sh
tree=$(mktemp -d)
git worktree add -q --detach "$tree" "$base"
trap 'git worktree remove --force "$tree"' EXIT
# The bench itself from this checkout, the library from the earlier commit.
cp benches/scaling.rs benches/contenders.rs benches/Cargo.toml "$tree/benches/"
(cd "$tree" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$OLDPWD/target/before" \
    cargo bench -p hotbreaker-benches --bench scaling --no-run --target x86_64-unknown-linux-gnu \
    --message-format=json-render-diagnostics) |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "scaling") | .executable' |
    grep -v null | tail -1 | xargs -I{} cp {} target/device/scaling-before
cat > target/device/compare.sh <<'SH'
#!/usr/bin/env bash
# Runs this checkout's scaling bench and an earlier commit's, one after the other.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=/tmp/out
rm -rf "$out"; mkdir -p "$out"
trap '[[ -n "${OUT:-}" ]] && mkdir -p "$OUT" && tar czf "$OUT/results.tgz" -C "$out" .' EXIT
{ echo "nproc: $(nproc)"; lscpu | grep 'Model name'; uname -srm; } | tee "$out/machine.txt"
export SCALING_SECS=${SCALING_SECS:-1} SCALING_LONG_CALLS=${SCALING_LONG_CALLS:-1e9}
for bin in scaling scaling-before; do
    SCALING_TSV="$out/$bin.tsv" timeout 280 "$here/$bin" >"$out/$bin.txt" 2>"$out/$bin.err"
    echo "$bin exit status: $?" | tee -a "$out/machine.txt"
done
for bin in scaling scaling-before; do echo "=== $bin"; cat "$out/$bin.txt"; done
SH
chmod +x target/device/compare.sh
ls -la target/device
