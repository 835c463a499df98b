#!/usr/bin/env bash
# A real Ollama server for the AI provider's tests and for local use, built from
# the Go module proxy (no weights are downloaded; the tests create a tiny
# generated model through the API).
#
#   ollama.sh build   build the server once per machine (cached), print its path
#   ollama.sh up      build if needed, start it on a loopback port, wait until ready
#   ollama.sh down    stop what `up` started (and nothing else)
#   ollama.sh status  is it running? exit 1 if not
#   ollama.sh env     print the export lines for the app and the tests:
#                       eval "$(deploy/local/ollama.sh env)"
#
# The binary is cached outside the checkout, per version, under
# $ATUMDESK_OLLAMA_CACHE (default /var/cache/atumdesk/ollama when writable, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/atumdesk/ollama); a cold build takes minutes
# and needs a C/C++ toolchain (build-essential), later runs reuse it. Models live
# under data/ollama. v0.6.8 is pinned: newer module zips lack a vendored header
# and do not build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA="$ROOT/data"
RUN="$DATA/run"
LOGS="$DATA/log"
MODELS="$DATA/ollama/models"
PIDFILE="$RUN/ollama.pid"
LOGFILE="$LOGS/ollama.log"

VERSION=v0.6.8
HOST=127.0.0.1
PORT="${ATUMDESK_OLLAMA_PORT:-11555}"
READY_TIMEOUT=60
export PATH="$PATH:/usr/local/go/bin"

LOG_TAG=ollama
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cache_dir() {
  if [[ -n ${ATUMDESK_OLLAMA_CACHE:-} ]]; then
    printf '%s\n' "$ATUMDESK_OLLAMA_CACHE"
  elif mkdir -p /var/cache/atumdesk/ollama 2>/dev/null && [[ -w /var/cache/atumdesk/ollama ]]; then
    printf '%s\n' /var/cache/atumdesk/ollama
  else
    printf '%s\n' "${XDG_CACHE_HOME:-$HOME/.cache}/atumdesk/ollama"
  fi
}

BIN_DIR="$(cache_dir)/$VERSION/bin"
BIN="$BIN_DIR/ollama"

running() { pid_alive "$PIDFILE" ollama; }

ready() { curl -fs -o /dev/null --max-time 2 "http://$HOST:$PORT/api/version"; }

cmd_build() {
  if [[ -x $BIN ]]; then
    printf '%s\n' "$BIN"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH"
  command -v gcc >/dev/null && command -v g++ >/dev/null ||
    die "building Ollama needs a C/C++ toolchain: apt-get install build-essential"
  mkdir -p "$BIN_DIR"
  # One build per machine even when several `up`s race (parallel CI jobs).
  exec 9>"$BIN_DIR/.build.lock"
  flock 9
  if [[ ! -x $BIN ]]; then
    log "building ollama $VERSION into $BIN_DIR (cold: a few minutes)"
    local tmp
    tmp="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
    # Outside the checkout so our go.mod plays no part; the version ldflag
    # makes /api/version report 0.6.8 instead of 0.0.0.
    (cd "$tmp" && CGO_ENABLED=1 GOFLAGS= GOBIN="$tmp" go install \
      -ldflags "-X github.com/ollama/ollama/version.Version=${VERSION#v}" \
      "github.com/ollama/ollama@$VERSION") || { rm -rf "$tmp"; die "go install github.com/ollama/ollama@$VERSION failed"; }
    mv "$tmp/ollama" "$BIN"
    rm -rf "$tmp"
    log "built $BIN"
  fi
  flock -u 9
  printf '%s\n' "$BIN"
}

cmd_up() {
  cmd_build >/dev/null
  mkdir -p "$RUN" "$LOGS" "$MODELS"
  if running; then
    ready && { log "already running on $HOST:$PORT"; return 0; }
  else
    rm -f "$PIDFILE"
    if ready; then
      die "something else answers on $HOST:$PORT; set ATUMDESK_OLLAMA_PORT to a free port"
    fi
    # num_thread comes from each model; OLLAMA_NUM_PARALLEL 2 keeps memory small.
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    OLLAMA_HOST="$HOST:$PORT" OLLAMA_MODELS="$MODELS" OLLAMA_NUM_PARALLEL=2 OLLAMA_KEEP_ALIVE=30m \
      setsid bash -c 'echo $$ >"$0"; exec nohup "$@"' "$PIDFILE" "$BIN" serve >>"$LOGFILE" 2>&1 </dev/null &
    local i
    for ((i = 0; i < 50; i++)); do [[ -s $PIDFILE ]] && break; sleep 0.1; done
  fi
  local deadline=$((SECONDS + READY_TIMEOUT))
  until ready; do
    if ! running || ((SECONDS >= deadline)); then
      tail -n 40 "$LOGFILE" >&2 || true
      die "ollama did not become ready on $HOST:$PORT (log: $LOGFILE)"
    fi
    sleep 0.3
  done
  log "ready: http://$HOST:$PORT (models: $MODELS, binary: $BIN)"
}

cmd_down() {
  running || { rm -f "$PIDFILE"; return 0; }
  local pid i
  pid=$(<"$PIDFILE")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do alive "$pid" || break; sleep 0.5; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

cmd_status() {
  if running && ready; then
    printf 'ollama running pid %s http://%s:%s binary %s\n' "$(<"$PIDFILE")" "$HOST" "$PORT" "$BIN"
    return 0
  fi
  printf 'ollama stopped (binary %s%s)\n' "$BIN" "$([[ -x $BIN ]] || echo ', not built')"
  return 1
}

cmd_env() {
  cat <<EOF
export ATUMDESK_OLLAMA_URL='http://$HOST:$PORT'
export ATUMDESK_TEST_OLLAMA_URL='http://$HOST:$PORT'
export ATUMDESK_TEST_OLLAMA_BIN='$BIN'
EOF
}

case "${1:-}" in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) die "usage: $0 build|up|down|status|env" ;;
esac
