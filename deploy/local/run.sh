#!/usr/bin/env bash
# Run ATUM DESK locally on top of the stack from stack.sh (`make run` / `make stop`).
#
#   run.sh start    stack up, migrate, seed the demo data once, start `atumdesk all`
#                   in the background and wait for /readyz
#   run.sh stop     stop atumdesk (SIGTERM, then wait); the stack stays up
#   run.sh status   is atumdesk running?
#
# Expects bin/atumdesk (make build). State: data/run/atumdesk.pid, data/log/atumdesk.log,
# data/kafka (the embedded broker), data/.seeded and data/demo-logins.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="$ROOT/deploy/local/stack.sh"
BIN="$ROOT/bin/atumdesk"
DATA="$ROOT/data"
PIDFILE="$DATA/run/atumdesk.pid"
LOGFILE="$DATA/log/atumdesk.log"
SEEDED="$DATA/.seeded"
LOGINS="$DATA/demo-logins.txt"
URL="http://127.0.0.1:8080"
READY_TIMEOUT=60
STOP_TIMEOUT=30

LOG_TAG=run
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

app_pid() {
  local pid
  [[ -s $PIDFILE ]] || return 1
  read -r pid <"$PIDFILE" || true
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && [[ "$(ps -o comm= -p "$pid")" == atumdesk* ]] || return 1
  echo "$pid"
}

ready() { curl -fs -o /dev/null --max-time 2 "$URL/readyz"; }

show_logins() {
  if [[ -s $LOGINS ]]; then
    echo "Demo logins (from $LOGINS):"
    cat "$LOGINS"
  fi
}

stop_app() {
  local pid i
  if ! pid=$(app_pid); then
    log "atumdesk is not running"
    rm -f "$PIDFILE"
    return 0
  fi
  log "stopping atumdesk (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 2; i++)); do
    alive "$pid" || break
    sleep 0.5
  done
  if alive "$pid"; then
    log "atumdesk did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

cmd_start() {
  bash "$STACK" up

  local pid
  if pid=$(app_pid); then
    log "atumdesk is already running (pid $pid) at $URL — 'make stop' to stop it"
    show_logins
    return 0
  fi
  [[ -x $BIN ]] || die "$BIN not found; run 'make build' first"
  if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
    die "port 8080 is taken by a process this script did not start (see: ss -ltnp 'sport = :8080')"
  fi

  eval "$(bash "$STACK" env)"
  # Outbound mail (the notify stage) through the local Postfix when
  # deploy/local/mail.sh runs it and no SMTP server was given.
  if [[ -z ${ATUMDESK_SMTP_HOST:-} ]] && (exec 3<>/dev/tcp/127.0.0.1/11025) 2>/dev/null; then
    export ATUMDESK_SMTP_HOST=127.0.0.1 ATUMDESK_SMTP_PORT=11025 ATUMDESK_SMTP_SECURITY=none
    export ATUMDESK_MAIL_FROM="${ATUMDESK_MAIL_FROM:-ATUM DESK <noreply@atumdesk.test>}"
    log "outbound mail through the local Postfix (127.0.0.1:11025; read it with deploy/local/mail.sh's users)"
  fi
  # Mailboxes may not point at loopback by default (SSRF guard); the local
  # Dovecot of deploy/local/mail.sh is allowed explicitly.
  export ATUMDESK_IMAP_ALLOW_HOSTS="${ATUMDESK_IMAP_ALLOW_HOSTS:-127.0.0.1:11143,127.0.0.1:11993}"
  if [[ -z ${ATUMDESK_IMAP_CA_FILE:-} && -f $DATA/mail/tls/cert.pem ]]; then
    export ATUMDESK_IMAP_CA_FILE="$DATA/mail/tls/cert.pem"
  fi
  # A local sealing key for mailbox passwords, made once and kept with the
  # data (production sets ATUMDESK_SECRET_KEY from its secret store).
  if [[ -z ${ATUMDESK_SECRET_KEY:-} ]]; then
    [[ -s $DATA/secret-key ]] || (umask 077 && head -c 32 /dev/urandom | base64 >"$DATA/secret-key")
    ATUMDESK_SECRET_KEY="$(<"$DATA/secret-key")"
    export ATUMDESK_SECRET_KEY
  fi
  export ATUMDESK_KAFKA_DATA_DIR="$DATA/kafka"
  mkdir -p "$ATUMDESK_KAFKA_DATA_DIR" "$DATA/log" "$DATA/run"

  log "applying migrations"
  "$BIN" migrate up

  if [[ ! -f $SEEDED ]]; then
    log "seeding demo data (first run only)"
    # The seed prints the demo logins on stdout; keep them for later runs.
    "$BIN" seed --demo | tee "$LOGINS.tmp"
    mv "$LOGINS.tmp" "$LOGINS"
    touch "$SEEDED"
  fi

  log "starting atumdesk all (log: $LOGFILE)"
  # Own session, so it outlives this shell and a Ctrl-C in make.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec nohup "$@"' "$PIDFILE" "$BIN" all \
    >>"$LOGFILE" 2>&1 </dev/null &

  local i
  for ((i = 0; i < 50; i++)); do [[ -s $PIDFILE ]] && break; sleep 0.1; done
  read -r pid <"$PIDFILE" || die "atumdesk did not start (no pidfile $PIDFILE)"

  local deadline=$((SECONDS + READY_TIMEOUT))
  until ready; do
    if ! alive "$pid"; then
      log_tail "$LOGFILE"
      rm -f "$PIDFILE"
      die "atumdesk exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$LOGFILE"
      stop_app
      die "atumdesk was not ready at $URL/readyz after ${READY_TIMEOUT}s"
    fi
    sleep 0.5
  done

  log "atumdesk is up (pid $pid): $URL"
  show_logins
}

cmd_status() {
  local pid
  if pid=$(app_pid); then
    echo "atumdesk    running  pid $pid  $URL  $(ready && echo ready || echo 'not ready')"
  else
    echo "atumdesk    stopped"
    return 1
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) stop_app ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
