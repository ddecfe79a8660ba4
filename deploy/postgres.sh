#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers for the tests that run the solver's store on it: if
# LILYPAD_TEST_POSTGRES_URL is set, that server is used as it is. Otherwise the local cluster
# (Debian's postgresql package: pg_ctlcluster) is started if it is down, and a `lilypad` role
# that may create databases is added if missing; the tests then use
# postgres://lilypad:lilypad@127.0.0.1:5432/postgres and make a database of their own per test.
# Used by `make test` and .ci/run. Installs nothing: on Debian, apt-get install -y postgresql.
set -euo pipefail
if [ -n "${LILYPAD_TEST_POSTGRES_URL:-}" ]; then exit 0; fi
if ! command -v pg_lsclusters >/dev/null 2>&1; then
    echo "no PostgreSQL server: install one (Debian: apt-get install -y postgresql) or set LILYPAD_TEST_POSTGRES_URL to one where the user may create databases" >&2
    exit 2
fi
cluster=$(pg_lsclusters --no-header | awk 'NR == 1 {print $1, $2, $4}')
if [ -z "$cluster" ]; then
    echo "PostgreSQL is installed but has no cluster: pg_createcluster --start 15 main" >&2
    exit 2
fi
read -r version name status <<<"$cluster"
as_postgres() {
    if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi
}
if [ "$status" != online ]; then
    echo "starting PostgreSQL $version/$name" >&2
    if [ "$(id -u)" = 0 ]; then pg_ctlcluster "$version" "$name" start; else sudo pg_ctlcluster "$version" "$name" start; fi
fi
for _ in $(seq 1 60); do
    as_postgres "psql -qtAc 'SELECT 1'" >/dev/null 2>&1 && break
    sleep 0.5
done
exists=$(as_postgres "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'lilypad'\"")
if [ "$exists" != 1 ]; then
    as_postgres "psql -qc \"CREATE ROLE lilypad LOGIN CREATEDB PASSWORD 'lilypad'\""
fi
