#!/usr/bin/env bash
# The ATUM DESK local stack: PostgreSQL 15, Redis and Prometheus from Debian's
# packages, each started directly (no systemd) on its own loopback port, with all
# state under the repository's data/ directory.
#
#   stack.sh up       install what is missing, start what is not running, wait until ready
#   stack.sh down     stop what `up` started (and nothing else)
#   stack.sh status   show what is running; exit 1 if anything is down
#   stack.sh env      print the export lines for the app and the tests:
#                       eval "$(deploy/local/stack.sh env)"
#
# Idempotent: a second `up` finds everything running and does nothing.
# Debian's own clusters/services (5432, 6379, 9090) are neither used nor touched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
DATA="$ROOT/data"
RUN="$DATA/run"
LOGS="$DATA/log"

HOST=127.0.0.1
PG_PORT=15432
REDIS_PORT=16379
PROM_PORT=19090

PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA="$DATA/postgres"
PG_LOG="$LOGS/postgres.log"
PG_OS_USER=postgres          # initdb refuses to run as root
REDIS_DIR="$DATA/redis"
REDIS_CONF="$DATA/redis.conf"
REDIS_PID="$RUN/redis.pid"
REDIS_LOG="$LOGS/redis.log"
PROM_CONFIG="$ROOT/deploy/prometheus/prometheus.yml"
PROM_DIR="$DATA/prometheus"
PROM_PID="$RUN/prometheus.pid"
PROM_LOG="$LOGS/prometheus.log"

READY_TIMEOUT=60             # seconds to wait for each service

DB_USER=atumdesk
DB_PASSWORD=atumdesk
DB_NAME=atumdesk

LOG_TAG=stack
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Run a command as the PostgreSQL OS user (or as ourselves when not root).
as_pg() {
  if is_root; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

# --- installation -----------------------------------------------------------

install_missing() {
  local missing=() pkg
  # package → a file it must provide (covers "installed but half-removed").
  pkg_installed postgresql-15 && [[ -x $PG_BIN/initdb ]] || missing+=(postgresql-15)
  pkg_installed redis-server && command -v redis-server >/dev/null || missing+=(redis-server)
  pkg_installed redis-tools && command -v redis-cli >/dev/null || missing+=(redis-tools)
  pkg_installed prometheus && command -v prometheus >/dev/null || missing+=(prometheus)
  command -v curl >/dev/null || missing+=(curl)
  command -v ps >/dev/null || missing+=(procps)
  ((${#missing[@]})) || return 0

  local sudo=()
  is_root || sudo=(sudo)
  log "installing ${missing[*]} with apt-get"
  # Another apt/dpkg may be running: wait for its lock instead of failing.
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${apt[@]}" update
  "${apt[@]}" install --no-install-recommends "${missing[@]}"
  for pkg in "${missing[@]}"; do
    pkg_installed "$pkg" || die "apt-get did not install $pkg"
  done
}

# --- layout -----------------------------------------------------------------

prepare_dirs() {
  mkdir -p "$DATA" "$LOGS" "$REDIS_DIR" "$PROM_DIR" "$DATA/prometheus-targets"
  # The run dir holds PostgreSQL's socket (written by the postgres user) and our
  # pidfiles: world-writable with the sticky bit, like /tmp.
  mkdir -p "$RUN"
  chmod 1777 "$RUN"

  local sock="$RUN/.s.PGSQL.$PG_PORT"
  ((${#sock} < 100)) || die "socket path too long for a unix socket (${#sock} chars): $sock; move the checkout to a shorter path"

  if is_root; then
    id -u "$PG_OS_USER" >/dev/null 2>&1 || die "OS user $PG_OS_USER does not exist (is postgresql-15 installed?)"
    # The postgres user must reach data/postgres, data/log and data/run: grant
    # traverse (o+x) on each directory on the way that denies it (e.g. /root),
    # from the top down.
    local dir path=""
    local -a parts
    IFS=/ read -ra parts <<<"${LOGS#/}"
    for dir in "${parts[@]}"; do
      path+="/$dir"
      if ! runuser -u "$PG_OS_USER" -- test -x "$path"; then
        log "granting o+x on $path so that $PG_OS_USER can reach $DATA"
        chmod o+x "$path"
      fi
    done
    mkdir -p "$PG_DATA"
    chown "$PG_OS_USER:" "$PG_DATA"
    touch "$PG_LOG"
    chown "$PG_OS_USER:" "$PG_LOG"
  else
    mkdir -p "$PG_DATA"
    touch "$PG_LOG"
  fi
  chmod 700 "$PG_DATA"
}

# render TEMPLATE OUTPUT: replace @RUN_DIR@, @LOG_DIR@, @REDIS_DIR@ with absolute paths.
render() {
  local tmp="$2.tmp"
  sed -e "s|@RUN_DIR@|$RUN|g" -e "s|@LOG_DIR@|$LOGS|g" -e "s|@REDIS_DIR@|$REDIS_DIR|g" "$1" >"$tmp"
  mv "$tmp" "$2"
}

# --- PostgreSQL -------------------------------------------------------------

pg_running() { pid_alive "$PG_DATA/postmaster.pid" postgres; }

pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -d postgres; }

# psql as the cluster's superuser over the unix socket (peer authentication).
pg_admin() {
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PG_PORT" -d postgres
}

pg_up() {
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    log "postgres: initdb $PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" --encoding=UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 \
      || { log_tail "$PG_LOG"; die "initdb failed"; }
  fi
  # Our settings live in atumdesk.conf, included once from postgresql.conf.
  render "$HERE/postgresql.conf.tmpl" "$PG_DATA/atumdesk.conf"
  is_root && chown "$PG_OS_USER:" "$PG_DATA/atumdesk.conf"
  grep -q "^include 'atumdesk.conf'" "$PG_DATA/postgresql.conf" \
    || printf "\n# ATUM DESK local stack (deploy/local/postgresql.conf.tmpl)\ninclude 'atumdesk.conf'\n" >>"$PG_DATA/postgresql.conf"

  if pg_running; then
    log "postgres: already running on $HOST:$PG_PORT"
  else
    port_busy "$PG_PORT" && die "postgres: port $PG_PORT is taken by another process"
    log "postgres: starting on $HOST:$PG_PORT"
    as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" -s \
      || { log_tail "$PG_LOG"; die "postgres failed to start"; }
  fi
  wait_until postgres "$PG_LOG" pg_ready

  # Role and database for the app; tests connect to "postgres" and create their own.
  pg_admin <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
}

pg_down() {
  if pg_running; then
    log "postgres: stopping"
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -s
  else
    log "postgres: not running"
  fi
}

# --- Redis ------------------------------------------------------------------

redis_running() { pid_alive "$REDIS_PID" redis-server; }
redis_ping() { [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_up() {
  render "$HERE/redis.conf.tmpl" "$REDIS_CONF"
  if redis_running; then
    log "redis: already running on $HOST:$REDIS_PORT"
  else
    port_busy "$REDIS_PORT" && die "redis: port $REDIS_PORT is taken by another process"
    rm -f "$REDIS_PID"
    log "redis: starting on $HOST:$REDIS_PORT"
    redis-server "$REDIS_CONF" || { log_tail "$REDIS_LOG"; die "redis failed to start"; }
  fi
  wait_until redis "$REDIS_LOG" redis_ping
}

redis_down() {
  if redis_running; then
    log "redis: stopping"
    local pid
    pid=$(<"$REDIS_PID")
    # SHUTDOWN flushes the append-only file; the pidfile check keeps us from
    # stopping a Redis that is not ours.
    redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 60; i++)); do alive "$pid" || break; sleep 0.5; done
    if alive "$pid"; then echo "$pid" >"$REDIS_PID"; stop_pid "$REDIS_PID" redis; fi
    rm -f "$REDIS_PID"
  else
    log "redis: not running"
  fi
}

# --- Prometheus -------------------------------------------------------------

prom_running() { pid_alive "$PROM_PID" prometheus; }
prom_ready() { curl -fsS -o /dev/null "http://$HOST:$PROM_PORT/-/ready"; }

prom_up() {
  if prom_running; then
    log "prometheus: already running on $HOST:$PROM_PORT"
  else
    port_busy "$PROM_PORT" && die "prometheus: port $PROM_PORT is taken by another process"
    rm -f "$PROM_PID"
    log "prometheus: starting on $HOST:$PROM_PORT"
    start_detached "$PROM_PID" "$PROM_LOG" prometheus \
      --config.file="$PROM_CONFIG" \
      --storage.tsdb.path="$PROM_DIR" \
      --storage.tsdb.retention.time=7d \
      --web.listen-address="$HOST:$PROM_PORT" \
      --web.enable-lifecycle
  fi
  # Fail fast if it exits (bad config, locked storage) instead of waiting out the timeout.
  wait_until prometheus "$PROM_LOG" prom_ready_or_dead
  prom_running || { log_tail "$PROM_LOG"; die "prometheus exited during start-up"; }
}
prom_ready_or_dead() { prom_ready || ! prom_running; }

prom_down() {
  if prom_running; then
    log "prometheus: stopping"
    stop_pid "$PROM_PID" prometheus
  else
    log "prometheus: not running"
    rm -f "$PROM_PID"
  fi
}

# --- commands ---------------------------------------------------------------

cmd_up() {
  install_missing
  prepare_dirs
  pg_up
  redis_up
  prom_up
  log "ready: postgres $HOST:$PG_PORT, redis $HOST:$REDIS_PORT, prometheus http://$HOST:$PROM_PORT"
}

cmd_down() {
  prom_down
  redis_down
  pg_down
}

cmd_status() {
  local down=0 pid
  if pg_running; then
    pid=$(head -n 1 "$PG_DATA/postmaster.pid")
    printf '%-11s running  pid %-7s %s:%s  %s\n' postgres "$pid" "$HOST" "$PG_PORT" "$(pg_ready && echo ready || echo 'not ready')"
  else
    printf '%-11s stopped\n' postgres; down=1
  fi
  if redis_running; then
    printf '%-11s running  pid %-7s %s:%s  %s\n' redis "$(<"$REDIS_PID")" "$HOST" "$REDIS_PORT" "$(redis_ping && echo ready || echo 'not ready')"
  else
    printf '%-11s stopped\n' redis; down=1
  fi
  if prom_running; then
    printf '%-11s running  pid %-7s %s:%s  %s\n' prometheus "$(<"$PROM_PID")" "$HOST" "$PROM_PORT" "$(prom_ready && echo ready || echo 'not ready')"
  else
    printf '%-11s stopped\n' prometheus; down=1
  fi
  printf 'data: %s  logs: %s\n' "$DATA" "$LOGS"
  return "$down"
}

cmd_env() {
  cat <<EOF
export ATUMDESK_DATABASE_URL='postgres://$DB_USER:$DB_PASSWORD@$HOST:$PG_PORT/$DB_NAME?sslmode=disable'
export ATUMDESK_REDIS_URL='redis://$HOST:$REDIS_PORT/0'
export ATUMDESK_TEST_DATABASE_URL='postgres://$DB_USER:$DB_PASSWORD@$HOST:$PG_PORT/postgres?sslmode=disable'
export ATUMDESK_TEST_REDIS_URL='redis://$HOST:$REDIS_PORT/0'
export ATUMDESK_PROMETHEUS_URL='http://$HOST:$PROM_PORT'
EOF
}

usage() {
  echo "usage: $0 up|down|status|env" >&2
  exit 2
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) usage ;;
esac
