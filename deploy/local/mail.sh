#!/usr/bin/env bash
# The ATUM DESK local mail test servers: Dovecot (IMAP with IDLE, users in a
# passwd-file) and Postfix (SMTP, delivering locally into those users'
# Maildirs), from Debian's packages, each started directly (no systemd) on
# loopback ports of our own, with all config and state under data/mail/.
#
#   mail.sh up       install what is missing, start what is not running, wait until ready
#   mail.sh down     stop what `up` started (and nothing else)
#   mail.sh status   show what is running; exit 1 if anything is down
#   mail.sh env      print the export lines for the tests:
#                      eval "$(deploy/local/mail.sh env)"
#
# Idempotent: a second `up` finds both running (and reloads them if their
# rendered config or the user list changed). The system's /etc/dovecot and
# /etc/postfix are neither read nor touched.
#
# Ports (127.0.0.1 only): IMAP 11143 (plain + STARTTLS), IMAPS 11993,
# SMTP 11025 (no auth, STARTTLS offered), submission 11587 (STARTTLS + AUTH),
# SMTPS 11465 (implicit TLS + AUTH). TLS uses a self-signed certificate made
# once (data/mail/tls/cert.pem, valid for 127.0.0.1 and localhost).
#
# Privileges: Dovecot runs rootless as the mail user ($MAIL_USER: the
# dedicated system user atumdesk-mail when run as root, else yourself);
# Postfix's master must be started as root (it drops to the postfix user;
# virtual(8) writes the Maildirs as the mail user).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local/mail"
DATA="$ROOT/data"
MAIL_DIR="$DATA/mail"
LOGS="$DATA/log"

HOST=127.0.0.1
IMAP_PORT=11143
IMAPS_PORT=11993
SMTP_PORT=11025
SUBMISSION_PORT=11587
SMTPS_PORT=11465

DOVECOT_CONF="$MAIL_DIR/dovecot.conf"
DOVECOT_PID="$MAIL_DIR/run/dovecot/master.pid"
DOVECOT_LOG="$LOGS/dovecot.log"
PF_DIR="$MAIL_DIR/postfix"
PF_LOG="$LOGS/postfix.log"
USERS_FILE="$MAIL_DIR/users"
TLS_DIR="$MAIL_DIR/tls"

# One password for every test user: these servers listen on loopback only and
# hold nothing but test mail.
MAIL_PASSWORD=atumdesk-mail-test
# Named users (the end-to-end tests) plus LOAD_USERS numbered ones
# (box001@load.test …) for the parallel-mailbox tests.
NAMED_USERS=(support@acme.test support@globex.test agent@acme.test customer@example.test
  customer2@example.test noreply@atumdesk.test)
LOAD_USERS=120
DOMAINS="acme.test globex.test example.test load.test atumdesk.test"

READY_TIMEOUT=60

LOG_TAG=mail
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if is_root; then MAIL_USER=atumdesk-mail; else MAIL_USER="$(id -un)"; fi
SUDO=()
is_root || SUDO=(sudo)

# greets PORT PREFIX: the server on PORT sends a greeting line starting with PREFIX.
greets() {
  local line
  exec 3<>"/dev/tcp/$HOST/$1" || return 1
  IFS= read -r -t 5 line <&3 || { exec 3>&-; return 1; }
  exec 3>&-
  [[ $line == "$2"* ]]
}

as_mail_user() {
  if is_root; then runuser -u "$MAIL_USER" -- "$@"; else "$@"; fi
}

# --- installation -----------------------------------------------------------

install_missing() {
  local missing=() pkg
  pkg_installed dovecot-imapd && command -v dovecot >/dev/null || missing+=(dovecot-imapd)
  pkg_installed postfix && command -v postfix >/dev/null || missing+=(postfix)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ps >/dev/null || missing+=(procps)
  ((${#missing[@]})) || return 0

  log "installing ${missing[*]} with apt-get"
  # "No configuration": the package writes no /etc/postfix/main.cf and starts
  # no system Postfix; ours runs from data/mail/postfix.
  echo "postfix postfix/main_mailer_type select No configuration" | "${SUDO[@]}" debconf-set-selections
  local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${apt[@]}" update
  "${apt[@]}" install --no-install-recommends "${missing[@]}"
  for pkg in "${missing[@]}"; do
    pkg_installed "$pkg" || die "apt-get did not install $pkg"
  done
}

ensure_mail_user() {
  is_root || return 0
  if ! id -u "$MAIL_USER" >/dev/null 2>&1; then
    log "creating system user $MAIL_USER (owner of the test Maildirs)"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$MAIL_USER"
  fi
}

# --- layout -----------------------------------------------------------------

all_users() {
  printf '%s\n' "${NAMED_USERS[@]}"
  local i
  for ((i = 1; i <= LOAD_USERS; i++)); do printf 'box%03d@load.test\n' "$i"; done
}

# write_if_changed FILE: stdin replaces FILE when different; exit 0 if it changed.
write_if_changed() {
  local file=$1 tmp="$1.tmp"
  cat >"$tmp"
  if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$file"
}

# render TEMPLATE: print it with the @…@ placeholders replaced.
render() {
  sed -e "s|@MAIL_DIR@|$MAIL_DIR|g" -e "s|@LOG_DIR@|$LOGS|g" \
    -e "s|@MAIL_USER@|$MAIL_USER|g" -e "s|@MAIL_GROUP@|$MAIL_GROUP|g" \
    -e "s|@MAIL_UID@|$MAIL_UID|g" -e "s|@MAIL_GID@|$MAIL_GID|g" \
    -e "s|@IMAP_PORT@|$IMAP_PORT|g" -e "s|@IMAPS_PORT@|$IMAPS_PORT|g" \
    -e "s|@SMTP_PORT@|$SMTP_PORT|g" -e "s|@SUBMISSION_PORT@|$SUBMISSION_PORT|g" \
    -e "s|@SMTPS_PORT@|$SMTPS_PORT|g" -e "s|@DOMAINS@|$DOMAINS|g" "$1"
}

# Set by prepare; a change of any rendered file means a reload.
DOVECOT_CHANGED=0
POSTFIX_CHANGED=0

prepare() {
  MAIL_UID=$(id -u "$MAIL_USER")
  MAIL_GID=$(id -g "$MAIL_USER")
  MAIL_GROUP=$(id -gn "$MAIL_USER")

  mkdir -p "$MAIL_DIR" "$LOGS" "$PF_DIR"
  chmod 755 "$MAIL_DIR"
  local d
  for d in vmail run dovecot-state tls; do
    mkdir -p "$MAIL_DIR/$d"
    is_root && chown "$MAIL_USER:" "$MAIL_DIR/$d"
  done
  chmod 700 "$MAIL_DIR/vmail" "$MAIL_DIR/tls"
  touch "$DOVECOT_LOG" "$PF_LOG"
  if is_root; then
    chown "$MAIL_USER:" "$DOVECOT_LOG"
    # The mail user and postfix must reach data/mail: grant traverse (o+x)
    # on each directory on the way that denies it, from the top down.
    local dir path="" who
    local -a parts
    IFS=/ read -ra parts <<<"${MAIL_DIR#/}"
    for dir in "${parts[@]}"; do
      path+="/$dir"
      for who in "$MAIL_USER" postfix; do
        if ! runuser -u "$who" -- test -x "$path"; then
          log "granting o+x on $path so that $who can reach $MAIL_DIR"
          chmod o+x "$path"
        fi
      done
    done
  fi

  # Self-signed certificate, made once (CA:TRUE so clients can pin it as a root).
  if [[ ! -s $TLS_DIR/cert.pem || ! -s $TLS_DIR/key.pem ]]; then
    log "tls: generating a self-signed certificate for 127.0.0.1/localhost"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
      -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" -subj "/CN=ATUM DESK local mail" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
      -addext "extendedKeyUsage=serverAuth" >/dev/null 2>&1 || die "openssl could not make the certificate"
    chmod 600 "$TLS_DIR/key.pem"
    chmod 644 "$TLS_DIR/cert.pem"
    is_root && chown "$MAIL_USER:" "$TLS_DIR/key.pem" "$TLS_DIR/cert.pem"
  fi

  # Users: Dovecot's passwd-file and Postfix's virtual mailbox map, both
  # generated from the same list; every Maildir is created up front.
  local u
  all_users | while read -r u; do printf '%s:{PLAIN}%s::::::\n' "$u" "$MAIL_PASSWORD"; done \
    | write_if_changed "$USERS_FILE" && DOVECOT_CHANGED=1
  all_users | while read -r u; do printf '%s %s/%s/Maildir/\n' "$u" "${u#*@}" "${u%@*}"; done \
    | write_if_changed "$PF_DIR/vmailbox" && POSTFIX_CHANGED=1
  chmod 600 "$USERS_FILE"
  is_root && chown "$MAIL_USER:" "$USERS_FILE"
  all_users | while read -r u; do
    for d in cur new tmp; do printf '%s\n' "$MAIL_DIR/vmail/${u#*@}/${u%@*}/Maildir/$d"; done
  done | as_mail_user xargs mkdir -p

  render "$HERE/dovecot.conf.tmpl" | write_if_changed "$DOVECOT_CONF" && DOVECOT_CHANGED=1
  render "$HERE/main.cf.tmpl" | write_if_changed "$PF_DIR/main.cf" && POSTFIX_CHANGED=1
  render "$HERE/master.cf.tmpl" | write_if_changed "$PF_DIR/master.cf" && POSTFIX_CHANGED=1
  return 0
}

# --- Dovecot ----------------------------------------------------------------

dovecot_running() { pid_alive "$DOVECOT_PID" dovecot; }
dovecot_ready() { greets "$IMAP_PORT" "* OK"; }

dovecot_up() {
  if dovecot_running; then
    if ((DOVECOT_CHANGED)); then
      log "dovecot: config changed, reloading"
      kill -HUP "$(<"$DOVECOT_PID")"
    else
      log "dovecot: already running on $HOST:$IMAP_PORT/$IMAPS_PORT"
    fi
  else
    port_busy "$IMAP_PORT" && die "dovecot: port $IMAP_PORT is taken by another process"
    port_busy "$IMAPS_PORT" && die "dovecot: port $IMAPS_PORT is taken by another process"
    log "dovecot: starting on $HOST:$IMAP_PORT (IMAP, STARTTLS) and $HOST:$IMAPS_PORT (IMAPS) as $MAIL_USER"
    as_mail_user dovecot -c "$DOVECOT_CONF" || { log_tail "$DOVECOT_LOG"; die "dovecot failed to start"; }
  fi
  wait_until dovecot "$DOVECOT_LOG" dovecot_ready
}

dovecot_down() {
  if dovecot_running; then
    log "dovecot: stopping"
    local pid i
    pid=$(<"$DOVECOT_PID")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do alive "$pid" || break; sleep 0.5; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  else
    log "dovecot: not running"
  fi
}

# --- Postfix ----------------------------------------------------------------

postfix_cmd() { "${SUDO[@]}" postfix -c "$PF_DIR" "$@"; }
postfix_running() { postfix_cmd status >/dev/null 2>&1; }
postfix_ready() { greets "$SMTP_PORT" "220"; }

postfix_up() {
  if postfix_running; then
    if ((POSTFIX_CHANGED)); then
      log "postfix: config changed, reloading"
      postfix_cmd reload >/dev/null 2>&1 || { log_tail "$PF_LOG"; die "postfix reload failed"; }
    else
      log "postfix: already running on $HOST:$SMTP_PORT"
    fi
  else
    local p
    for p in "$SMTP_PORT" "$SUBMISSION_PORT" "$SMTPS_PORT"; do
      port_busy "$p" && die "postfix: port $p is taken by another process"
    done
    log "postfix: starting on $HOST:$SMTP_PORT (SMTP), $SUBMISSION_PORT (submission), $SMTPS_PORT (SMTPS)"
    # `check` creates the queue's subdirectories with the right owners.
    "${SUDO[@]}" mkdir -p "$MAIL_DIR/postfix-queue"
    postfix_cmd check >>"$PF_LOG" 2>&1 || { log_tail "$PF_LOG"; die "postfix check failed"; }
    postfix_cmd start >>"$PF_LOG" 2>&1 || { log_tail "$PF_LOG"; die "postfix failed to start"; }
  fi
  wait_until postfix "$PF_LOG" postfix_ready
}

postfix_down() {
  if [[ -f $PF_DIR/main.cf ]] && postfix_running; then
    log "postfix: stopping"
    postfix_cmd stop >/dev/null 2>&1 || true
  else
    log "postfix: not running"
  fi
}

# --- commands ---------------------------------------------------------------

cmd_up() {
  install_missing
  ensure_mail_user
  prepare
  dovecot_up
  postfix_up
  log "ready: IMAP $HOST:$IMAP_PORT, IMAPS $HOST:$IMAPS_PORT, SMTP $HOST:$SMTP_PORT ($(all_users | wc -l) users)"
}

cmd_down() {
  postfix_down
  dovecot_down
}

cmd_status() {
  local down=0
  if dovecot_running; then
    printf '%-9s running  pid %-7s %s:%s,%s  %s\n' dovecot "$(<"$DOVECOT_PID")" "$HOST" "$IMAP_PORT" "$IMAPS_PORT" \
      "$(dovecot_ready && echo ready || echo 'not ready')"
  else
    printf '%-9s stopped\n' dovecot; down=1
  fi
  if [[ -f $PF_DIR/main.cf ]] && postfix_running; then
    printf '%-9s running  pid %-7s %s:%s,%s,%s  %s\n' postfix "$(tr -d ' ' <"$MAIL_DIR/postfix-queue/pid/master.pid")" "$HOST" \
      "$SMTP_PORT" "$SUBMISSION_PORT" "$SMTPS_PORT" "$(postfix_ready && echo ready || echo 'not ready')"
  else
    printf '%-9s stopped\n' postfix; down=1
  fi
  printf 'data: %s  logs: %s/{dovecot,postfix}.log\n' "$MAIL_DIR" "$LOGS"
  return "$down"
}

cmd_env() {
  cat <<EOF
export ATUMDESK_TEST_IMAP_ADDR='$HOST:$IMAP_PORT'
export ATUMDESK_TEST_IMAPS_ADDR='$HOST:$IMAPS_PORT'
export ATUMDESK_TEST_SMTP_ADDR='$HOST:$SMTP_PORT'
export ATUMDESK_TEST_SUBMISSION_ADDR='$HOST:$SUBMISSION_PORT'
export ATUMDESK_TEST_SMTPS_ADDR='$HOST:$SMTPS_PORT'
export ATUMDESK_TEST_MAIL_PASSWORD='$MAIL_PASSWORD'
export ATUMDESK_TEST_MAIL_CA='$TLS_DIR/cert.pem'
export ATUMDESK_TEST_MAIL_DIR='$MAIL_DIR/vmail'
export ATUMDESK_TEST_MAIL_LOAD_USERS='$LOAD_USERS'
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
