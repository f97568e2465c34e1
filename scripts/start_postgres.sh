#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on loopback (127.0.0.1) for the shared-store tests and for
# trying sweeps with several workers on one machine; install PostgreSQL from the distribution's
# packages first if it is missing (needs root). Prints one line: the export of the server's URL.
#
#   eval "$(bash scripts/start_postgres.sh)"      # -> EVILM_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:55432/evilm
#   EVILM_PG_DIR=/tmp/pg EVILM_PG_PORT=5433 bash scripts/start_postgres.sh
#   bash scripts/start_postgres.sh --no-install   # exit 3 when PostgreSQL is not installed
#
# The cluster trusts local connections without a password: it is for tests on one machine, never a
# shared server (use a real server with passwords for that; the suite masks them in logs).
set -euo pipefail
install=1
[ "${1:-}" = "--no-install" ] && install=0
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$install" = 0 ]; then echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 3; fi
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=${EVILM_PG_DIR:-/tmp/evilm-postgres}
port=${EVILM_PG_PORT:-55432}
run_as=""
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then run_as="runuser -u postgres --"; owner=postgres; fi  # initdb refuses root
if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
  :  # a server already answers on this port (an earlier call, or CI's): use it
elif ! $run_as "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  rm -rf "$dir" && mkdir -p "$dir" && chown "$owner" "$dir"
  $run_as "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
  $run_as "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=/tmp -c fsync=off" start >/dev/null
fi
for db in evilm; do
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db"
done
echo "export EVILM_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/evilm"
