#!/usr/bin/env bash
# make bench-blocktime: `lilypad run cowsay:v0.0.1` on a `lilypad dev` whose chain makes a
# block every B seconds (anvil --block-time B, and geth --dev with period B), against its
# floor: four blocks (the job creator agrees first, the resource provider in the next, the
# results the next, the acceptance the next), plus a bare `docker run` of the same image (measured in the same run) when the job
# cannot overlap the wait for a block. Prints each setting's median and its ratio to both
# floors (4 blocks; 4 blocks + docker run). Not a test: nothing asserts.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LILYPAD=${LILYPAD:-target/release/lilypad}
ROUNDS=${ROUNDS:-5}
CHAINS=${CHAINS:-anvil geth}
PERIODS=${PERIODS:-1 2}
IMAGE=lilypad/cowsay:v0.0.1
START_WAIT_TENTHS=1200  # geth imports a key and starts before it answers

docker run --rm --network none "$IMAGE" warmup >/dev/null
docker_times=()
for round in $(seq 1 "$ROUNDS"); do
    start=$(now); docker run --rm --network none "$IMAGE" "moo $round" >/dev/null; end=$(now)
    docker_times+=($(( (end - start) / 1000000 )))
done
dm=$(median "${docker_times[@]}")
echo "median docker run --rm: ${dm} ms"
printf '%-6s %3s %10s %9s %7s %14s %7s\n' chain B "median ms" "4B ms" ratio "4B+docker ms" ratio

for chain in $CHAINS; do
    for period in $PERIODS; do
        data=$(mktemp -d)
        start_dev "$data" --chain "$chain" --block-time "$period"
        DATA_DIR="$data" "$LILYPAD" run -q cowsay:v0.0.1 -i Message=warmup >/dev/null 2>>"$data/dev.log"
        times=()
        for round in $(seq 1 "$ROUNDS"); do
            start=$(now); DATA_DIR="$data" "$LILYPAD" run -q cowsay:v0.0.1 -i Message="moo $round" >/dev/null 2>>"$data/dev.log"; end=$(now)
            times+=($(( (end - start) / 1000000 )))
        done
        kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; rm -rf "$data"
        m=$(median "${times[@]}")
        blocks=$(( 4 * period * 1000 ))
        floor=$(( blocks + ${dm%.*} ))
        awk -v c="$chain" -v b="$period" -v m="$m" -v t="$blocks" -v f="$floor" 'BEGIN { printf "%-6s %3s %10s %9s %6.2fx %14s %6.2fx\n", c, b, m, t, m / t, f, m / f }'
    done
done
