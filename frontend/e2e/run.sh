#!/usr/bin/env bash
# End-to-end tests of the web app in Debian's Chromium against the real
# binary: its own PostgreSQL database, Redis database index, embedded Kafka
# broker, ports and data directory, so it runs beside `make run` and the Go
# tests. Expects the local stack up (make test does that) and bin/atumdesk
# built with the current frontend/dist.
#
#   frontend/e2e/run.sh [playwright args…]
#   frontend/e2e/run.sh --serve      start the same server and wait (debugging)
#
# Artefacts: frontend/test-results/ (screenshots, budgets.json, traces of
# failures). E2E_UPDATE_SCREENSHOTS=1 also copies the README's screenshots
# to docs/screenshots/.
set -euo pipefail

FRONTEND="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$FRONTEND/.." && pwd)"
BIN="$ROOT/bin/atumdesk"
CHROMIUM=/usr/bin/chromium

log() { printf '[e2e] %s\n' "$*"; }
die() { printf '[e2e] ERROR: %s\n' "$*" >&2; exit 1; }

[[ -x $BIN ]] || die "$BIN not found (make build)"
if [[ ! -x $CHROMIUM ]]; then
  log "installing Debian's chromium (never a downloaded browser)"
  apt-get install -y chromium >/dev/null || die "apt-get install chromium failed"
fi
[[ -d $FRONTEND/node_modules ]] || (cd "$FRONTEND" && npm ci --no-audit --no-fund)

eval "$(bash "$ROOT/deploy/local/stack.sh" env)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

WORK="$(mktemp -d /tmp/atumdesk-e2e.XXXXXX)"
DB="atumdesk_e2e_$$"
ADMIN_URL="$ATUMDESK_TEST_DATABASE_URL"
DB_URL="${ADMIN_URL%/*}/$DB?${ADMIN_URL#*\?}"
# A Redis database index from the same counter the Go tests use.
REDIS_BASE="${ATUMDESK_TEST_REDIS_URL%/*}"
REDIS_PORT="$(sed -E 's|.*:([0-9]+)/?.*|\1|' <<<"$REDIS_BASE")"
IDX=$(( 1 + $(redis-cli -p "$REDIS_PORT" INCR atumdesk:test:next_db) % 255 ))
redis-cli -p "$REDIS_PORT" -n "$IDX" FLUSHDB >/dev/null
PORT="$(free_port)"
APP_PID=""

cleanup() {
  local rc=$?
  if [[ -n $APP_PID ]] && kill -0 "$APP_PID" 2>/dev/null; then
    kill -TERM "$APP_PID" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$APP_PID" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$APP_PID" 2>/dev/null || true
  fi
  if ((rc != 0)) && [[ -f $WORK/atumdesk.log ]]; then
    echo "--- last lines of the atumdesk log ---" >&2
    tail -n 40 "$WORK/atumdesk.log" >&2 || true
  fi
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

log "database $DB, redis db $IDX, http 127.0.0.1:$PORT"
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null

PASSWORD="e2e-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ATUMDESK_DATABASE_URL="$DB_URL"
export ATUMDESK_REDIS_URL="$REDIS_BASE/$IDX"
export ATUMDESK_HTTP_ADDR="127.0.0.1:$PORT"
export ATUMDESK_PUBLIC_URL="http://127.0.0.1:$PORT"
export ATUMDESK_METRICS_ADDR="127.0.0.1:$(free_port)"
export ATUMDESK_KAFKA_EMBEDDED_ADDR="127.0.0.1:$(free_port)"
export ATUMDESK_KAFKA_DATA_DIR="$WORK/kafka"
export ATUMDESK_STORAGE_DIR="$WORK/attachments"
export ATUMDESK_MAIL_RAW_DIR="$WORK/mail-raw"
export ATUMDESK_JWT_SECRET="e2e-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export ATUMDESK_LOG_LEVEL=info
unset ATUMDESK_KAFKA_BROKERS

"$BIN" migrate up >/dev/null
"$BIN" seed --demo --password "$PASSWORD" >/dev/null
"$BIN" all >"$WORK/atumdesk.log" 2>&1 &
APP_PID=$!

for _ in $(seq 1 120); do
  curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/readyz" && break
  kill -0 "$APP_PID" 2>/dev/null || die "atumdesk exited during start-up"
  sleep 0.5
done
curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz" || die "atumdesk not ready after 60 s"

if [[ ${1:-} == --serve ]]; then
  log "serving http://127.0.0.1:$PORT (demo users' password: $PASSWORD); Ctrl-C stops"
  printf 'E2E_BASE_URL=http://127.0.0.1:%s E2E_PASSWORD=%s\n' "$PORT" "$PASSWORD" >"$FRONTEND/test-results/.serve" 2>/dev/null || true
  wait "$APP_PID"
  exit 0
fi

cd "$FRONTEND"
E2E_BASE_URL="http://127.0.0.1:$PORT" E2E_PASSWORD="$PASSWORD" npx playwright test "$@"
