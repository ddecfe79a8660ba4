#!/usr/bin/env bash
# Makes sure a Docker engine answers: if `docker info` fails and dockerd is installed and we
# are root (a container or CI machine without systemd), start dockerd in the background and
# wait for its socket. Used by `make images` and .ci/run.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "no Docker engine: install one (Debian: apt-get install -y docker.io) or point DOCKER_HOST at one" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "the Docker engine is not running: start it (sudo systemctl start docker) or add yourself to the docker group" >&2
    exit 2
fi
echo "starting dockerd (log: /var/log/dockerd.log)" >&2
setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && exit 0
    sleep 0.5
done
echo "dockerd did not come up; see /var/log/dockerd.log" >&2
exit 2
