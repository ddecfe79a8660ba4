#!/usr/bin/env bash
# make bench: wall time of `lilypad run cowsay:v0.0.1` on a running `lilypad dev` network
# against a bare `docker run --rm` of the same image, measured alternately in one run.
# Prints each pair, the medians and their ratio (goal: <= 2x). Not a test: nothing asserts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LILYPAD=${LILYPAD:-target/release/lilypad}
ROUNDS=${ROUNDS:-15}
IMAGE=lilypad/cowsay:v0.0.1
data=$(mktemp -d)
log="$data/dev.log"
cleanup() { kill "${dev_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

start_dev "$data"
lilypad_times=(); docker_times=()
# One warm-up of each (first container start, first connections).
DATA_DIR="$data" "$LILYPAD" run -q cowsay:v0.0.1 -i Message=warmup >/dev/null 2>&1
docker run --rm --network none "$IMAGE" warmup >/dev/null
printf '%-6s %12s %12s\n' round "lilypad ms" "docker ms"
for round in $(seq 1 "$ROUNDS"); do
    start=$(now); DATA_DIR="$data" "$LILYPAD" run -q cowsay:v0.0.1 -i Message="moo $round" >/dev/null 2>>"$log"; end=$(now)
    l=$(( (end - start) / 1000000 ))
    start=$(now); docker run --rm --network none "$IMAGE" "moo $round" >/dev/null; end=$(now)
    d=$(( (end - start) / 1000000 ))
    lilypad_times+=("$l"); docker_times+=("$d")
    printf '%-6s %12s %12s\n' "$round" "$l" "$d"
done
lm=$(median "${lilypad_times[@]}"); dm=$(median "${docker_times[@]}")
echo
echo "median lilypad run: ${lm} ms; median docker run --rm: ${dm} ms"
awk -v l="$lm" -v d="$dm" 'BEGIN { printf "ratio lilypad/docker: %.2fx (goal <= 2x)\n", l / d }'
