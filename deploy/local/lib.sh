# Shared helpers of the local scripts (stack.sh, mail.sh, ollama.sh, run.sh).
# Source it after setting LOG_TAG (the prefix of log lines), HOST (the
# loopback address the services listen on) and READY_TIMEOUT (seconds).
# shellcheck shell=bash

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }
is_root() { [[ $EUID -eq 0 ]]; }

# Print the last lines of a log file to stderr (used when a service fails).
log_tail() {
  local file=$1
  if [[ -s $file ]]; then
    printf -- '--- last lines of %s ---\n' "$file" >&2
    tail -n 40 "$file" >&2
    printf -- '---\n' >&2
  else
    printf '(log %s is empty or missing)\n' "$file" >&2
  fi
}

# wait_until NAME LOGFILE CMD...: poll CMD until it succeeds or READY_TIMEOUT passes.
wait_until() {
  local name=$1 logfile=$2; shift 2
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log_tail "$logfile"
      die "$name was not ready after ${READY_TIMEOUT}s (log: $logfile)"
    fi
    sleep 0.3
  done
}

# alive PID: the process exists and is not a zombie (the sandbox's init may be
# slow to reap daemons that were re-parented to it).
alive() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $stat && $stat != Z* ]]
}

# pid_alive PIDFILE NAME: the pidfile's first line names a live process whose
# command is NAME.
pid_alive() {
  local pidfile=$1 name=$2 pid
  [[ -s $pidfile ]] || return 1
  read -r pid <"$pidfile" || true
  pid=${pid// /}
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ "$(ps -o comm= -p "$pid" 2>/dev/null)" == "$name"* ]]
}

# port_busy PORT: something listens on HOST:PORT.
port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# stop_pid PIDFILE NAME: SIGTERM the process, wait up to 30 s, then SIGKILL.
stop_pid() {
  local pidfile=$1 name=$2 pid i
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    alive "$pid" || break
    sleep 0.5
  done
  if alive "$pid"; then
    log "$name (pid $pid) did not stop after 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# start_detached PIDFILE LOGFILE CMD...: start CMD in its own session, detached
# from this shell and its terminal, with its pid written to PIDFILE.
start_detached() {
  local pidfile=$1 logfile=$2; shift 2
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec nohup "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 50; i++)); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die "could not start $* (no pidfile $pidfile)"
}

# pkg_installed PKG: the Debian package is installed.
pkg_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}
