#!/usr/bin/env bash
# make bench: wall time of `lilypad run cowsay:v0.0.1` on two running `lilypad dev` networks,
# one whose resource provider runs jobs on the local Docker engine and one whose resource
# provider runs them on Bacalhau (a real node on the same engine, `make tools`), against a bare
# `docker run --rm` of the same image, measured alternately in one run. Prints each round, the
# medians and their ratios to docker run (goal for the Docker RP: <= 2x). Not a test: nothing
# asserts. BACALHAU=0 leaves Bacalhau out.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LILYPAD=${LILYPAD:-target/release/lilypad}
ROUNDS=${ROUNDS:-15}
BACALHAU=${BACALHAU:-1}
IMAGE=lilypad/cowsay:v0.0.1
data=$(mktemp -d)
bacalhau_data="$data/bacalhau"
log="$data/runs.log"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cleanup() {
    kill "${dev_pids[@]:-0}" "${bacalhau_pid:-0}" "${registry_pid:-0}" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${pushed:-}" ] && docker rmi "$pushed" >/dev/null 2>&1
    rm -rf "$data"
}
trap cleanup EXIT
dev_pids=()

mkdir -p "$data/docker"
start_dev "$data/docker"
dev_pids+=("$dev_pid")

if [ "$BACALHAU" = 1 ]; then
    # Bacalhau runs a local image only once it has a registry digest: push it to a registry
    # of our own first. Then one node (orchestrator + compute) on loopback ports.
    tools=${LILYPAD_TOOLS_DIR:-$HOME/.cache/lilypad/tools}/bin
    mkdir -p "$bacalhau_data"
    registry="127.0.0.1:$(free_port)"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
        "$bacalhau_data/registry" "$registry" >"$bacalhau_data/registry.yml"
    docker-registry serve "$bacalhau_data/registry.yml" >/dev/null 2>&1 &
    registry_pid=$!
    for _ in $(seq 1 100); do curl -sf "http://$registry/v2/" >/dev/null && break; sleep 0.1; done
    # (The tag stays until the end: an image keeps its registry digest only while it has one.)
    docker tag "$IMAGE" "$registry/$IMAGE" && docker push -q "$registry/$IMAGE" >/dev/null
    pushed="$registry/$IMAGE"
    api_port=$(free_port); nats_port=$(free_port); publisher_port=$(free_port)
    HOME="$bacalhau_data" "$tools/bacalhau" serve --orchestrator --compute --data-dir "$bacalhau_data/node" \
        -c API.Host=127.0.0.1 -c API.Port="$api_port" -c Orchestrator.Host=127.0.0.1 \
        -c Orchestrator.Port="$nats_port" -c Compute.Orchestrators="nats://127.0.0.1:$nats_port" \
        -c Publishers.Types.Local.Address=127.0.0.1 -c Publishers.Types.Local.Port="$publisher_port" \
        -c Compute.AllocatedCapacity.CPU=2 -c UpdateConfig.Interval=0 -c Logging.Level=error \
        >"$bacalhau_data/bacalhau.log" 2>&1 &
    bacalhau_pid=$!
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$api_port/api/v1/orchestrator/nodes" | grep -q CONNECTED && break
        sleep 0.2
    done
    mkdir -p "$data/bacalhau-dev"
    start_dev "$data/bacalhau-dev" --executor bacalhau --bacalhau-api-host "127.0.0.1:$api_port"
    dev_pids+=("$dev_pid")
fi

run() { DATA_DIR="$data/$1" "$LILYPAD" run -q cowsay:v0.0.1 -i Message="$2" >/dev/null 2>>"$log"; }
ms_of() { local start end; start=$(now); "$@" >/dev/null; end=$(now); echo $(( (end - start) / 1000000 )); }

# One warm-up of each (first container start, first connections).
docker run --rm --network none "$IMAGE" warmup >/dev/null
run docker warmup
[ "$BACALHAU" = 1 ] && run bacalhau-dev warmup
docker_times=(); lilypad_times=(); bacalhau_times=()
printf '%-6s %12s %14s %16s\n' round "docker ms" "lilypad ms" "lilypad+bac ms"
for round in $(seq 1 "$ROUNDS"); do
    d=$(ms_of docker run --rm --network none "$IMAGE" "moo $round")
    l=$(ms_of run docker "moo $round")
    b=-
    if [ "$BACALHAU" = 1 ]; then b=$(ms_of run bacalhau-dev "moo $round"); bacalhau_times+=("$b"); fi
    docker_times+=("$d"); lilypad_times+=("$l")
    printf '%-6s %12s %14s %16s\n' "$round" "$d" "$l" "$b"
done
dm=$(median "${docker_times[@]}"); lm=$(median "${lilypad_times[@]}")
echo
echo "median docker run --rm: ${dm} ms"
awk -v l="$lm" -v d="$dm" 'BEGIN { printf "median lilypad run, Docker RP:   %6d ms = %.2fx docker run (goal <= 2x)\n", l, l / d }'
if [ "$BACALHAU" = 1 ]; then
    bm=$(median "${bacalhau_times[@]}")
    awk -v b="$bm" -v d="$dm" -v l="$lm" 'BEGIN { printf "median lilypad run, Bacalhau RP: %6d ms = %.2fx docker run (%.2fx the Docker RP)\n", b, b / d, b / l }'
fi
