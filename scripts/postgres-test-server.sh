#!/usr/bin/env bash
# Starts (or reuses) a throwaway PostgreSQL cluster for tests and prints its URL
# on stdout, nothing else:
#
#   export NIXFX_TEST_PG_URL=$(bash scripts/postgres-test-server.sh)
#
# - data directory under /tmp (a fresh `mktemp -d`), `initdb -A trust`,
#   listening on 127.0.0.1 only, on a free port, unix socket inside the data dir;
# - run as the `postgres` user when invoked as root (PostgreSQL refuses to run
#   as root), as the current user otherwise (superuser role still named postgres);
# - repeated runs reuse the cluster recorded in $STATE_FILE while it answers,
#   and make sure the database `nixfx_test` exists;
# - `bash scripts/postgres-test-server.sh --stop` stops it and removes its data.
#
# Diagnostics go to stderr; the server log is in <data dir>/server.log.
set -euo pipefail

STATE_DIR="${NIXFX_PG_STATE_DIR:-/tmp/nixfx-postgres-test}"
STATE_FILE="$STATE_DIR/state"
DB_NAME="nixfx_test"

log() { printf 'postgres-test-server: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

find_bindir() {
  local candidate
  if command -v pg_config >/dev/null 2>&1; then
    candidate="$(pg_config --bindir 2>/dev/null || true)"
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then echo "$candidate"; return; fi
  fi
  # Debian keeps the server binaries out of PATH, one directory per major version.
  candidate="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then echo "$candidate"; return; fi
  candidate="$(command -v initdb 2>/dev/null || true)"
  if [ -n "$candidate" ]; then dirname "$(readlink -f "$candidate")"; return; fi
  die "no PostgreSQL server binaries found (looked for pg_config, /usr/lib/postgresql/*/bin, initdb on PATH); install postgresql"
}

BINDIR="$(find_bindir)"

if [ "$(id -u)" = "0" ]; then
  id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server as"
  RUN_USER="postgres"
  as_user() { runuser -u postgres -- "$@"; }
else
  RUN_USER="$(id -un)"
  as_user() { "$@"; }
fi

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{process.stdout.write(String(s.address().port));s.close()})' 2>/dev/null ||
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}

ready() { # port
  "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres >/dev/null 2>&1
}

ensure_db() { # port
  local exists
  exists="$("$BINDIR/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" || die "cannot query the server on port $1"
  if [ "$exists" != "1" ]; then
    "$BINDIR/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -qc "CREATE DATABASE $DB_NAME" >/dev/null ||
      die "cannot create database $DB_NAME on port $1"
  fi
}

stop_recorded() {
  if [ -f "$STATE_FILE" ]; then
    # shellcheck disable=SC1090
    . "$STATE_FILE"
    if [ -n "${DATADIR:-}" ] && [ -d "$DATADIR" ]; then
      as_user "$BINDIR/pg_ctl" -D "$DATADIR" -m fast -w stop >/dev/null 2>&1 || true
      rm -rf "$DATADIR"
    fi
    rm -f "$STATE_FILE"
  fi
}

if [ "${1:-}" = "--stop" ]; then
  stop_recorded
  log "stopped"
  exit 0
fi

mkdir -p "$STATE_DIR"

# Reuse a cluster from an earlier run while it still answers.
if [ -f "$STATE_FILE" ]; then
  # shellcheck disable=SC1090
  . "$STATE_FILE"
  if [ -n "${PORT:-}" ] && ready "$PORT"; then
    ensure_db "$PORT"
    log "reusing the cluster in $DATADIR on port $PORT"
    echo "postgres://postgres@127.0.0.1:$PORT/$DB_NAME"
    exit 0
  fi
  log "the recorded cluster does not answer; starting a new one"
  stop_recorded
fi

DATADIR="$(mktemp -d /tmp/nixfx-pg-data.XXXXXX)"
chown "$RUN_USER" "$DATADIR"
chmod 700 "$DATADIR"

as_user "$BINDIR/initdb" -D "$DATADIR" -A trust -U postgres -E UTF8 --no-locale >"$DATADIR.initdb.log" 2>&1 ||
  { cat "$DATADIR.initdb.log" >&2; die "initdb failed in $DATADIR"; }
rm -f "$DATADIR.initdb.log"

# A free port can be taken between probing and binding: retry a few times.
started=""
for _ in 1 2 3 4 5; do
  PORT="$(free_port)"
  if as_user "$BINDIR/pg_ctl" -D "$DATADIR" -l "$DATADIR/server.log" -w -t 30 \
    -o "-h 127.0.0.1 -p $PORT -k $DATADIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null 2>&1; then
    started="yes"
    break
  fi
  log "start on port $PORT failed; retrying"
done
[ -n "$started" ] || { tail -n 20 "$DATADIR/server.log" >&2 || true; die "could not start PostgreSQL (data dir $DATADIR)"; }

printf 'DATADIR=%q\nPORT=%q\n' "$DATADIR" "$PORT" >"$STATE_FILE"
ensure_db "$PORT"
log "started PostgreSQL ($BINDIR) as $RUN_USER in $DATADIR on 127.0.0.1:$PORT"
echo "postgres://postgres@127.0.0.1:$PORT/$DB_NAME"
