#!/usr/bin/env bash
# Starts a real PostgreSQL and a real Redis on 127.0.0.1 (non-default ports), with their
# data under .ci-state/, installing them with apt-get only when they are missing.
# Idempotent: servers already running are left alone.
#
#   source scripts/services.sh      # exports CLOVERLEAF_TEST_POSTGRES_URL and CLOVERLEAF_TEST_REDIS_URL
#   eval "$(scripts/services.sh)"   # same, from a subshell (prints the export lines)
#   scripts/services.sh stop        # stops both
#   scripts/services.sh apt-get ... # apt-get that waits for the dpkg lock (CLOVERLEAF_APT_LOCK_WAIT s, 600)
#
# Works as root on a fresh Debian machine (initdb refuses root, so PostgreSQL runs as the
# "postgres" user, created if needed). Ports: CLOVERLEAF_PG_PORT (55432), CLOVERLEAF_REDIS_PORT (56379).

_cl_services() {
  local root state pg_port redis_port pg_bin pg_data pg_sock redis_dir owner
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  state="${CLOVERLEAF_CI_STATE:-$root/.ci-state}"
  pg_port="${CLOVERLEAF_PG_PORT:-55432}"
  redis_port="${CLOVERLEAF_REDIS_PORT:-56379}"
  pg_data="$state/postgres/data"
  pg_sock="$state/postgres/run"
  redis_dir="$state/redis"
  mkdir -p "$state"

  _cl_log() { echo "services: $*" >&2; }

  _cl_free_port() {  # the first port from $1 up that nothing listens on (another checkout's servers may)
    local p="$1"
    while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
    echo "$p"
  }

  _cl_apt() {  # install Debian packages, only the missing ones
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || { _cl_log "need root (or sudo) to apt-get install ${missing[*]}"; return 1; }
    _cl_log "installing ${missing[*]}"
    _cl_apt_get update -qq || return 1
    _cl_apt_get install -y -qq --no-install-recommends "${missing[@]}"
  }

  _cl_dpkg_busy() {  # another apt-get/dpkg/unattended-upgrade holds one of the package locks
    local lock
    for lock in ${CLOVERLEAF_DPKG_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}; do
      [ -e "$lock" ] || continue
      # flock cannot see dpkg's fcntl locks; a non-blocking fcntl probe through python3 or
      # fuser can, and either answers "held" (0) or "free" (1)
      if command -v fuser >/dev/null 2>&1; then
        fuser "$lock" >/dev/null 2>&1 && return 0
      elif command -v python3 >/dev/null 2>&1; then
        python3 - "$lock" <<'PY' && return 0
import fcntl, sys
with open(sys.argv[1], "w") as f:
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(0)
    sys.exit(1)
PY
      fi
    done
    return 1
  }

  _cl_apt_get() {  # apt-get that waits (bounded) for the dpkg lock instead of failing on it
    local deadline out rc
    deadline=$(( $(date +%s) + ${CLOVERLEAF_APT_LOCK_WAIT:-600} ))
    while :; do
      while _cl_dpkg_busy; do
        [ "$(date +%s)" -ge "$deadline" ] && { _cl_log "dpkg lock still held after ${CLOVERLEAF_APT_LOCK_WAIT:-600} s; giving up"; return 1; }
        _cl_log "waiting for another apt-get/dpkg to release the lock"
        sleep "${CLOVERLEAF_APT_LOCK_POLL:-5}"
      done
      # DPkg::Lock::Timeout covers the race between the probe and apt-get taking the lock
      out="$(DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1)" && rc=0 || rc=$?
      printf '%s\n' "$out" >&2
      [ "$rc" -eq 0 ] && return 0
      case "$out" in
        *"Could not get lock"*|*"Unable to acquire the dpkg frontend lock"*|*"Unable to lock"*)
          [ "$(date +%s)" -ge "$deadline" ] && { _cl_log "dpkg lock still held; giving up"; return 1; }
          _cl_log "apt-get found the lock held; retrying"; sleep "${CLOVERLEAF_APT_LOCK_POLL:-5}" ;;
        *) return "$rc" ;;
      esac
    done
  }

  _cl_pg_bin() {  # the directory holding initdb/pg_ctl/postgres
    local d
    for d in /usr/lib/postgresql/*/bin; do
      [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
      dirname "$(command -v initdb)"; return 0
    fi
    return 1
  }

  _cl_as_owner() {  # run a command as the database owner (never root)
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- "$@"
    else
      "$@"
    fi
  }

  _cl_stop() {
    local bin
    if bin="$(_cl_pg_bin)" && [ -f "$pg_data/postmaster.pid" ]; then
      _cl_as_owner "$bin/pg_ctl" -D "$pg_data" -m fast stop >&2 || true
    fi
    if [ -f "$redis_dir/redis.pid" ]; then
      kill "$(cat "$redis_dir/redis.pid")" 2>/dev/null || true
      rm -f "$redis_dir/redis.pid"
    fi
  }

  if [ "${1:-}" = "stop" ]; then _cl_stop; return 0; fi
  if [ "${1:-}" = "apt-get" ]; then shift; _cl_apt_get "$@"; return; fi

  # -- PostgreSQL --------------------------------------------------------------------
  pg_bin="$(_cl_pg_bin)" || { _cl_apt postgresql >&2 && pg_bin="$(_cl_pg_bin)"; } || {
    _cl_log "no PostgreSQL binaries found after installing"; return 1; }
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
  owner="$(id -un)"; [ "$(id -u)" -eq 0 ] && owner=postgres
  mkdir -p "$pg_data" "$pg_sock"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$state/postgres" && chmod 700 "$pg_data"
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    _cl_log "initdb $pg_data"
    _cl_as_owner "$pg_bin/initdb" -D "$pg_data" -U cloverleaf --auth=trust -E UTF8 >/dev/null
  fi
  if _cl_as_owner "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    pg_port="$(sed -n 4p "$pg_data/postmaster.pid")"   # ours, already running: keep its port
  else
    pg_port="$(_cl_free_port "$pg_port")"
    _cl_log "starting PostgreSQL on 127.0.0.1:$pg_port"
    _cl_as_owner "$pg_bin/pg_ctl" -D "$pg_data" -w -t 60 -l "$state/postgres/server.log" \
      -o "-p $pg_port -k $pg_sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
  fi
  export CLOVERLEAF_TEST_POSTGRES_URL="postgresql+psycopg://cloverleaf@127.0.0.1:$pg_port/postgres"

  # -- Redis -------------------------------------------------------------------------
  command -v redis-server >/dev/null 2>&1 || _cl_apt redis-server >&2
  mkdir -p "$redis_dir"
  if [ -f "$redis_dir/redis.pid" ] && kill -0 "$(cat "$redis_dir/redis.pid")" 2>/dev/null && [ -f "$redis_dir/port" ]; then
    redis_port="$(cat "$redis_dir/port")"
  else
    redis_port="$(_cl_free_port "$redis_port")"
    echo "$redis_port" > "$redis_dir/port"
    _cl_log "starting Redis on 127.0.0.1:$redis_port"
    redis-server --bind 127.0.0.1 --port "$redis_port" --daemonize yes --dir "$redis_dir" \
      --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log" --save "" --appendonly no >&2
    for _ in $(seq 1 50); do
      [ -f "$redis_dir/redis.pid" ] && break
      sleep 0.1
    done
  fi
  export CLOVERLEAF_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"

  printf 'export CLOVERLEAF_TEST_POSTGRES_URL=%q\nexport CLOVERLEAF_TEST_REDIS_URL=%q\n' \
    "$CLOVERLEAF_TEST_POSTGRES_URL" "$CLOVERLEAF_TEST_REDIS_URL" > "$state/env"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  _cl_services "$@"
  case "${1:-}" in
    stop|apt-get) ;;
    *) cat "${CLOVERLEAF_CI_STATE:-$(cd "$(dirname "$0")/.." && pwd)/.ci-state}/env" ;;
  esac
else
  _cl_services "$@"
fi
