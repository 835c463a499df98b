#!/usr/bin/env bash
# nginx from Debian in front of local atumdesk api replicas, running the
# production site deploy/nginx/atumdesk.conf rendered for loopback: its
# listen address, its upstream servers and its log paths replaced, nothing
# else. No systemd, no /etc/nginx/sites-*; the system's nginx service (if
# any) is neither used nor touched.
#
#   nginx.sh install  install nginx from Debian if it is missing
#   nginx.sh up       install if needed, render, start (or reload when the
#                     rendered config changed), wait until it listens
#   nginx.sh down     stop what `up` started in this state directory
#   nginx.sh status   running? exit 1 if not
#   nginx.sh check    render the plain and the TLS variant of the site and
#                     `nginx -t` both (a self-signed certificate for the latter)
#   nginx.sh env      print export lines (the URL, the access log)
#
# Settings (environment), defaults for fronting `make run` (atumdesk all on 8080):
#   ATUMDESK_NGINX_LISTEN     127.0.0.1:18080   where nginx listens (loopback)
#   ATUMDESK_NGINX_UPSTREAMS  127.0.0.1:8080    comma-separated api replicas
#   ATUMDESK_NGINX_DIR        data/nginx        config, pid, logs, temp files
# Several instances run side by side with different directories and ports
# (the scale-out test starts its own).
#
# As root the workers run as www-data (the master binds, reads the config
# and opens the logs); the temp directories are theirs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SITE_TEMPLATE="$ROOT/deploy/nginx/atumdesk.conf"
NGINX=/usr/sbin/nginx

LISTEN="${ATUMDESK_NGINX_LISTEN:-127.0.0.1:18080}"
UPSTREAMS="${ATUMDESK_NGINX_UPSTREAMS:-127.0.0.1:8080}"
DIR="${ATUMDESK_NGINX_DIR:-$ROOT/data/nginx}"
PIDFILE="$DIR/nginx.pid"
ERROR_LOG="$DIR/log/error.log"
WORKER_USER=www-data

HOST="${LISTEN%:*}"
PORT="${LISTEN##*:}"
READY_TIMEOUT=30

LOG_TAG=nginx
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUDO=()
is_root || SUDO=(sudo)

cmd_install() {
  if pkg_installed nginx && [[ -x $NGINX ]]; then
    return 0
  fi
  log "installing nginx with apt-get"
  local apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${apt[@]}" update
  "${apt[@]}" install --no-install-recommends nginx
  if ! pkg_installed nginx || [[ ! -x $NGINX ]]; then die "apt-get did not install nginx"; fi
}

# render_site MODE LISTEN [TLS_LISTEN CERT KEY]: print the site for MODE
# plain or tls: upstream servers from UPSTREAMS (keeping the template's
# parameters), IPv4 loopback listeners only, logs under $DIR/log.
render_site() {
  local mode=$1 listen=$2 tls_listen=${3:-} cert=${4:-} key=${5:-}
  awk -v mode="$mode" -v listen="$listen" -v tls_listen="$tls_listen" -v ups="$UPSTREAMS" '
    mode == "tls" && /# plain-http$/ { next }
    mode == "tls" && /^[ \t]*#tls / { sub(/#tls /, "") }
    /^upstream atumdesk_api \{/ { in_up = 1 }
    in_up && /^\}/ { in_up = 0 }
    in_up && /^[ \t]*server [^ ]+/ {
      if (!done) {
        params = $0
        sub(/^[ \t]*server [^ ;]+/, "", params)
        n = split(ups, list, ",")
        for (i = 1; i <= n; i++) printf "    server %s%s\n", list[i], params
        done = 1
      }
      next
    }
    /^[ \t]*listen \[::\]/ { next }
    /^[ \t]*listen 80;/ { sub(/listen 80;/, "listen " listen ";") }
    /^[ \t]*listen 443 / { sub(/listen 443 /, "listen " tls_listen " ") }
    { print }
  ' "$SITE_TEMPLATE" | sed -e "s|/var/log/nginx/atumdesk\.|$DIR/log/|g" \
    -e "s|/etc/ssl/atumdesk/fullchain\.pem|$cert|" -e "s|/etc/ssl/atumdesk/privkey\.pem|$key|"
}

# render_main SITE: the main config around the site file SITE.
render_main() {
  local site=$1
  is_root && printf 'user %s;\n' "$WORKER_USER"
  cat <<EOF
# Rendered by deploy/local/nginx.sh from deploy/nginx/atumdesk.conf; do not edit.
worker_processes 1;
pid $PIDFILE;
error_log $ERROR_LOG warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    client_body_temp_path $DIR/tmp/body;
    proxy_temp_path $DIR/tmp/proxy;
    fastcgi_temp_path $DIR/tmp/fastcgi;
    uwsgi_temp_path $DIR/tmp/uwsgi;
    scgi_temp_path $DIR/tmp/scgi;
    include $site;
}
EOF
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

prepare_dir() {
  mkdir -p "$DIR/log" "$DIR/tmp"
  if is_root; then
    chown "$WORKER_USER:" "$DIR/tmp"
    # The workers must reach $DIR/tmp: grant traverse (o+x) on each
    # directory on the way that denies it (a test's 0700 temp dirs).
    local dir path=""
    local -a parts
    IFS=/ read -ra parts <<<"${DIR#/}"
    for dir in "${parts[@]}"; do
      path+="/$dir"
      runuser -u "$WORKER_USER" -- test -x "$path" || chmod o+x "$path"
    done
  fi
}

# render_all: the plain config for `up`; exit 0 when it changed.
render_all() {
  local site changed=1
  site=$(render_site plain "$LISTEN")
  grep -q "listen $LISTEN;" <<<"$site" || die "render: no listen line in $SITE_TEMPLATE"
  grep -q 'server 127\.0\.0\.1:808[12] ' <<<"$site" && die "render: the upstream servers of $SITE_TEMPLATE were not replaced"
  printf '%s\n' "$site" | write_if_changed "$DIR/site.conf" && changed=0
  render_main "$DIR/site.conf" | write_if_changed "$DIR/nginx.conf" && changed=0
  return "$changed"
}

running() { pid_alive "$PIDFILE" nginx; }
listening() { port_busy "$PORT"; }

cmd_up() {
  cmd_install
  prepare_dir
  local changed=0
  render_all && changed=1
  if running; then
    if ((changed)); then
      log "config changed, reloading"
      "$NGINX" -t -q -e "$ERROR_LOG" -p "$DIR/" -c "$DIR/nginx.conf" || { log_tail "$ERROR_LOG"; die "nginx -t failed"; }
      kill -HUP "$(<"$PIDFILE")"
    else
      log "already running on $LISTEN"
    fi
  else
    listening && die "port $PORT on $HOST is taken by another process"
    log "starting on $LISTEN in front of $UPSTREAMS (state: $DIR)"
    "$NGINX" -e "$ERROR_LOG" -p "$DIR/" -c "$DIR/nginx.conf" || { log_tail "$ERROR_LOG"; die "nginx failed to start"; }
  fi
  wait_until nginx "$ERROR_LOG" listening
}

cmd_down() {
  if running; then
    log "stopping (pid $(<"$PIDFILE"))"
    stop_pid "$PIDFILE" nginx
  else
    log "not running"
  fi
}

cmd_status() {
  if running; then
    printf 'nginx running  pid %s  %s -> %s  (%s)\n' "$(<"$PIDFILE")" "$LISTEN" "$UPSTREAMS" "$DIR"
  else
    printf 'nginx stopped  (%s)\n' "$DIR"
    return 1
  fi
}

cmd_check() {
  cmd_install
  local tmp
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now
  trap "rm -rf '$tmp'" EXIT
  DIR=$tmp PIDFILE=$tmp/nginx.pid ERROR_LOG=$tmp/error.log
  mkdir -p "$tmp/log" "$tmp/tmp"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=desk.example.com" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || die "openssl could not make a certificate"
  render_site plain "$LISTEN" >"$tmp/plain.conf"
  render_site tls "$LISTEN" "$HOST:$((PORT + 1))" "$tmp/cert.pem" "$tmp/key.pem" >"$tmp/tls.conf"
  if ! grep -q 'ssl_certificate ' "$tmp/tls.conf" || grep -Eq '^[[:space:]]*#tls ' "$tmp/tls.conf" ||
    grep -q '# plain-http$' "$tmp/tls.conf"; then
    die "render: the TLS variant still has commented or plain-http lines"
  fi
  local variant out
  for variant in plain tls; do
    render_main "$tmp/$variant.conf" >"$tmp/nginx-$variant.conf"
    # A warning (a duplicate MIME type, a conflicting server name…) fails too.
    out=$("$NGINX" -t -e "$ERROR_LOG" -p "$tmp/" -c "$tmp/nginx-$variant.conf" 2>&1) ||
      die "nginx -t failed for the $variant variant: $out"
    grep -q '\[warn\]' <<<"$out" && die "nginx -t warned for the $variant variant: $out"
    log "$variant variant: nginx -t ok"
  done
}

cmd_env() {
  cat <<EOF
export ATUMDESK_NGINX_URL='http://$LISTEN'
export ATUMDESK_NGINX_ACCESS_LOG='$DIR/log/access.log'
EOF
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  check) cmd_check ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 install|up|down|status|check|env" >&2
    exit 2
    ;;
esac
