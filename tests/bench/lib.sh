# Shared by the benchmark scripts (sourced, not run): clocks, medians, and a `lilypad dev`
# started in the background.

now() { date +%s%N; }

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# start_dev DATA_DIR [DEV FLAGS...]: starts `$LILYPAD dev` on DATA_DIR (log in DATA_DIR/dev.log),
# sets dev_pid, and returns once its network file is written (within START_WAIT_TENTHS tenths
# of a second, 300 unless set); exits with the log if it fails.
start_dev() {
    local data=$1
    shift
    DATA_DIR="$data" LOG_LEVEL=warn "$LILYPAD" dev --server-port 0 "$@" >"$data/dev.log" 2>&1 &
    dev_pid=$!
    for _ in $(seq 1 "${START_WAIT_TENTHS:-300}"); do
        [ -f "$data/dev/network.json" ] && return 0
        kill -0 "$dev_pid" 2>/dev/null || { cat "$data/dev.log"; echo "lilypad dev exited" >&2; exit 1; }
        sleep 0.1
    done
    cat "$data/dev.log"; echo "lilypad dev did not start" >&2; exit 1
}
