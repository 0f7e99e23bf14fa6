#!/usr/bin/env bash
# Starts and stops the services the test suite talks to: PostgreSQL (the Debian cluster) and MinIO.
#
#   eval "$(.ci/services.sh start)"   # then: TRACKLANE_REQUIRE_SERVICES=1 python3 -m pytest
#   .ci/services.sh stop
#
# `start` is idempotent and prints only `export NAME=value` lines on stdout (everything else goes to
# stderr), so the caller can eval them. `stop` stops MinIO (by its pid file) and the PostgreSQL cluster
# if `start` was the one that started it; a cluster that was already running is left alone.
#
# Needs: Debian's postgresql packages (pg_lsclusters, pg_ctlcluster), curl, and either the MinIO binary
# of the version .ci/tools.sh pins (in $TRACKLANE_CI_CACHE/tools/minio@VERSION/) or Go to build it
# (about 5 minutes). Run as root or with sudo.
set -euo pipefail

CACHE="${TRACKLANE_CI_CACHE:-$HOME/.cache/tracklane-ci}"
# shellcheck source=.ci/tools.sh
source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
MINIO_HOME="${TMPDIR:-/tmp}/tracklane-minio"
MINIO_DATA="$MINIO_HOME/data"
MINIO_PID="$MINIO_HOME/minio.pid"
MINIO_LOG="$MINIO_HOME/minio.log"
MINIO_ADDRESS="127.0.0.1:9000"
MINIO_CONSOLE_ADDRESS="127.0.0.1:9001"
MINIO_USER="tracklane"
MINIO_PASSWORD="tracklane-secret"
PG_ROLE="tracklane"
PG_PASSWORD="tracklane"
PG_DATABASE="tracklane"
PG_HOST="127.0.0.1"
# Marks a cluster this script started, so `stop` does not stop one that was already running.
PG_MARKER="${TMPDIR:-/tmp}/tracklane-postgres-started"

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Root runs commands directly; anyone else goes through sudo.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# psql and friends as the cluster owner, from / so they do not warn about an unreadable cwd.
as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && sudo -u postgres "$@")
  fi
}

# Prints "VERSION NAME PORT STATUS" of the cluster to use: `main` of the newest version, else any.
pg_cluster() {
  pg_lsclusters --no-header 2>/dev/null \
    | awk '{print $1, $2, $3, $4}' \
    | sort -k2,2r -k1,1nr \
    | awk '$2 == "main" {print; found = 1; exit} END {if (!found && NR) print}' \
    | head -n 1
}

start_postgres() {
  command -v pg_lsclusters >/dev/null || die "PostgreSQL is not installed: apt-get install -y postgresql"
  local cluster version name port status
  cluster=$(pg_cluster)
  if [[ -z $cluster ]]; then
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n 1)
    [[ -n $version ]] || die "no PostgreSQL server under /usr/lib/postgresql: apt-get install -y postgresql"
    log "creating PostgreSQL $version cluster 'main'"
    as_root pg_createcluster "$version" main >&2
    cluster=$(pg_cluster)
  fi
  read -r version name port status <<<"$cluster"
  if [[ $status == online* ]]; then
    log "PostgreSQL $version/$name already running on port $port"
  else
    log "starting PostgreSQL $version/$name on port $port"
    as_root pg_ctlcluster "$version" "$name" start >&2
    printf '%s %s\n' "$version" "$name" >"$PG_MARKER"
  fi

  local deadline=$((SECONDS + 60))
  until pg_isready -q -h "$PG_HOST" -p "$port"; do
    ((SECONDS < deadline)) || die "PostgreSQL not ready on $PG_HOST:$port after 60 s; see pg_lsclusters and its log"
    sleep 0.5
  done

  # Idempotent: the role's password and CREATEDB are reset, the database is created once.
  as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
    CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  ELSE
    ALTER ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
  END IF;
END
\$\$;
SQL
  if [[ -z $(as_postgres psql -X -tAq -p "$port" -d postgres \
      -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'") ]]; then
    as_postgres createdb -p "$port" -O "$PG_ROLE" "$PG_DATABASE" >&2
    log "created database $PG_DATABASE"
  fi
  # Password authentication over TCP, the way the tests connect.
  PGPASSWORD="$PG_PASSWORD" psql -X -tAq -h "$PG_HOST" -p "$port" -U "$PG_ROLE" -d "$PG_DATABASE" \
    -c "SELECT 1" >/dev/null || die "cannot log in as $PG_ROLE on $PG_HOST:$port (check pg_hba.conf)"
  PG_PORT=$port
}

stop_postgres() {
  if [[ ! -f $PG_MARKER ]]; then
    log "PostgreSQL: nothing to stop (this script did not start it)"
    return 0
  fi
  local version name
  read -r version name <"$PG_MARKER"
  log "stopping PostgreSQL $version/$name"
  as_root pg_ctlcluster "$version" "$name" stop >&2 || log "pg_ctlcluster stop failed (already stopped?)"
  rm -f "$PG_MARKER"
}

minio_healthy() {
  curl -sf --max-time 2 -o /dev/null "http://$MINIO_ADDRESS/minio/health/live"
}

minio_running() {
  [[ -f $MINIO_PID ]] && kill -0 "$(cat "$MINIO_PID")" 2>/dev/null
}

start_minio() {
  mkdir -p "$MINIO_DATA"
  if minio_running; then
    local pid running pinned
    pid=$(cat "$MINIO_PID")
    running=$(readlink "/proc/$pid/exe" 2>/dev/null || echo '?')
    pinned="$(tool_dir minio "$MINIO_VERSION")/minio"
    log "MinIO already running (pid $pid, $running)"
    # Left running, whatever its build: others may be using it. `stop` then `start` to change it.
    [[ $running == "$pinned" ]] || log "note: not the pinned MinIO $MINIO_VERSION ($pinned)"
  else
    local MINIO_BIN
    MINIO_BIN=$(minio_binary) || die "no MinIO $MINIO_VERSION and it could not be built"
    if minio_healthy; then
      die "something not started by this script already serves MinIO on $MINIO_ADDRESS; stop it first"
    fi
    log "starting MinIO on $MINIO_ADDRESS (data $MINIO_DATA, log $MINIO_LOG)"
    # setsid: a daemon of its own, not killed by the caller's Ctrl-C; its output goes to the log only.
    MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
      setsid "$MINIO_BIN" server "$MINIO_DATA" \
      --address "$MINIO_ADDRESS" --console-address "$MINIO_CONSOLE_ADDRESS" \
      </dev/null >"$MINIO_LOG" 2>&1 &
    echo $! >"$MINIO_PID"
  fi
  local deadline=$((SECONDS + 60))
  until minio_healthy; do
    if ! minio_running; then
      tail -n 20 "$MINIO_LOG" >&2 || true
      rm -f "$MINIO_PID"
      die "MinIO exited during start; log above ($MINIO_LOG)"
    fi
    ((SECONDS < deadline)) || die "MinIO not healthy on $MINIO_ADDRESS after 60 s; see $MINIO_LOG"
    sleep 0.5
  done
  log "MinIO ready on $MINIO_ADDRESS"
}

stop_minio() {
  if ! minio_running; then
    log "MinIO not running"
    rm -f "$MINIO_PID"
    return 0
  fi
  local pid
  pid=$(cat "$MINIO_PID")
  log "stopping MinIO (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "MinIO did not stop in 15 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$MINIO_PID"
}

main() {
  case "${1:-}" in
    start)
      start_postgres
      start_minio
      printf 'export %s=%q\n' \
        TRACKLANE_TEST_POSTGRES_URI "postgresql+psycopg://$PG_ROLE:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DATABASE" \
        TRACKLANE_TEST_S3_ENDPOINT_URL "http://$MINIO_ADDRESS" \
        TRACKLANE_TEST_S3_ACCESS_KEY_ID "$MINIO_USER" \
        TRACKLANE_TEST_S3_SECRET_ACCESS_KEY "$MINIO_PASSWORD"
      ;;
    stop)
      stop_minio
      stop_postgres
      ;;
    *)
      echo "usage: $0 start|stop" >&2
      exit 2
      ;;
  esac
}

main "$@"
