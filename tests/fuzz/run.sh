#!/usr/bin/env bash
# make fuzz: runs each fuzz target (tests/fuzz/fuzz_targets) for SECONDS with libFuzzer via
# cargo-fuzz on the nightly toolchain, starting from the committed seeds (corpus/TARGET) and
# what earlier runs found (target/corpus/TARGET, not committed), then prints the executions
# per target. A crash, a panic (overflow checks and debug assertions are on), a timeout (10 s
# per input) or more than 2 GiB of memory stops the run with the input saved under
# artifacts/TARGET/. The targets are built without optimisation and without a sanitizer (the
# node is safe Rust): the whole node builds with coverage instrumentation in about 10
# minutes on two cores, where an optimised AddressSanitizer build takes four times as long.
# Usage: tests/fuzz/run.sh SECONDS TARGET...
set -euo pipefail
seconds=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzzing needs the nightly toolchain (libFuzzer's instrumentation): rustup toolchain install nightly --profile minimal" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked --quiet
fi

fuzz=(cargo +nightly fuzz)
build=(--fuzz-dir tests/fuzz --dev --sanitizer none)
echo "building the fuzz targets"
"${fuzz[@]}" build "${build[@]}"

summary=()
for target in "$@"; do
    work="$here/target/corpus/$target"
    mkdir -p "$work" "$here/artifacts/$target"
    log="$here/target/$target.log"
    echo "fuzzing $target for ${seconds} s"
    if ! "${fuzz[@]}" run "${build[@]}" "$target" "$work" "$here/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz target $target failed; the input is under tests/fuzz/artifacts/$target/ (log: $log)" >&2
        exit 1
    fi
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    corpus=$(find "$work" -type f | wc -l)
    summary+=("$(printf '%-16s %12s executions in %s s, corpus %s inputs' "$target" "$runs" "$seconds" "$corpus")")
done
echo
echo "fuzzing done, no failure:"
printf '  %s\n' "${summary[@]}"
