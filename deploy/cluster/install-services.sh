#!/usr/bin/env bash
# The servers cluster mode runs on, from Debian packages: Postgres (Dagster's instance and the DuckLake
# catalog) and Redis (the Celery broker), as root with apt; elsewhere it says what is missing and leaves it
# (the cluster tests then skip, naming it). .ci/run calls it, and the tests do when a server is missing.
set -euo pipefail
missing=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-services: ${missing[*]} missing and apt-get cannot be used here (not root or no apt): the cluster tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)
apt-get update -qq
# the packages' own services are not wanted: the tests start private servers on free ports
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for service in postgresql redis-server; do
    command -v service >/dev/null && service "$service" stop >/dev/null 2>&1 || true
done
echo "install-services: installed ${missing[*]} in $(( $(date +%s) - started )) s"
