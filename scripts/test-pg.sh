#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests (start|stop|status), on 127.0.0.1 only.
# Data in $RUN/pg; the admin URL (with its random password) in $RUN/pg.url; $RUN/pg_ctl runs the
# right pg_ctl as the right user with -D set (the fault tests restart the server through it).
# The port comes from OSBUILDD_TEST_PG_PORT, so a private cluster can run beside the shared one.
set -euo pipefail
RUN=${OSBUILDD_TEST_RUN:-/var/tmp/osbuildd-test/servers}
PORT=${OSBUILDD_TEST_PG_PORT:-55432}
PGUSER_OS=osbuildd-pg
PGDIR=$RUN/pg
DATA=$PGDIR/data
LOG=$RUN/pg.log

PGBIN=$( (ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true) | sort -V | tail -n1)

# every PG binary runs unprivileged (initdb refuses root); as root through a dedicated system user
if [ "$(id -u)" = 0 ]; then
  AS=(runuser -u "$PGUSER_OS" --)
else
  AS=()
  PGUSER_OS=$(id -un)
fi
pg() { (cd / && "${AS[@]}" "$PGBIN/$1" "${@:2}"); }   # cd /: the unprivileged user may not read $PWD

# pid of our postmaster when it is alive and really postgres, else nothing
live_pid() {
  local pid
  [ -f "$DATA/postmaster.pid" ] || return 0
  pid=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if kill -0 "$pid" 2>/dev/null && grep -q postgres "/proc/$pid/comm" 2>/dev/null; then echo "$pid"; fi
}

do_stop() {
  local pid
  pid=$(live_pid)
  if [ -n "$pid" ] && [ -n "$PGBIN" ]; then
    pg pg_ctl -D "$DATA" -m fast -w -t 60 stop >/dev/null || true
    if kill -0 "$pid" 2>/dev/null; then   # fast shutdown stuck: immediate (SIGQUIT), then hard
      kill -QUIT "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$PGDIR" "$RUN/pg.url" "$RUN/pg_ctl"
}

# the unprivileged user must be able to reach $PGDIR; make traversable only what this script created
ensure_traversable() {
  local dir=$RUN created=() d
  while [ ! -d "$dir" ]; do created+=("$dir"); dir=$(dirname "$dir"); done
  mkdir -p "$RUN"
  for d in "${created[@]}"; do chmod a+x "$d"; done
  [ ${#AS[@]} -gt 0 ] || return 0
  d=$RUN
  while :; do
    if ! "${AS[@]}" test -x "$d"; then
      echo "test-pg: $d is not traversable by $PGUSER_OS (choose another OSBUILDD_TEST_RUN)" >&2; exit 1
    fi
    [ "$d" = / ] && break
    d=$(dirname "$d")
  done
}

do_start() {
  [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] || {
    echo "test-pg: PostgreSQL is not installed: run scripts/setup.sh --test" >&2; exit 1; }
  do_stop
  if [ "$(id -u)" = 0 ] && ! getent passwd "$PGUSER_OS" >/dev/null; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
  fi
  ensure_traversable
  local group pw
  group=$(id -gn "$PGUSER_OS")
  install -d -o "$PGUSER_OS" -g "$group" -m 700 "$PGDIR"
  install -o "$PGUSER_OS" -g "$group" -m 640 /dev/null "$LOG"
  pw=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
  (umask 077; printf '%s\n' "$pw" >"$PGDIR/pw")
  chown "$PGUSER_OS:$group" "$PGDIR/pw"
  pg initdb -D "$DATA" -U osbuildd --pwfile="$PGDIR/pw" --auth=scram-sha-256 -E UTF8 --no-locale \
    --no-sync --no-instructions >"$RUN/pg-initdb.log" 2>&1 || {
    echo "test-pg: initdb failed" >&2; cat "$RUN/pg-initdb.log" >&2; exit 1; }
  rm -f "$PGDIR/pw"
  # in postgresql.conf rather than pg_ctl -o, so a plain `pg_ctl restart` keeps them
  cat >>"$DATA/postgresql.conf" <<EOF

# osbuildd test cluster (scripts/test-pg.sh): loopback only, durability off for speed
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$PGDIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_stat_statements'
tcp_keepalives_idle = 10
tcp_keepalives_interval = 5
tcp_keepalives_count = 3
EOF
  # the wrapper always passes -l: without it a restarted server would write into the caller's stdout
  {
    echo '#!/bin/sh'
    echo "# pg_ctl for the test cluster in $DATA (written by scripts/test-pg.sh)"
    printf 'cd / && exec %s %q -D %q -l %q "$@"\n' "${AS[*]}" "$PGBIN/pg_ctl" "$DATA" "$LOG"
  } >"$RUN/pg_ctl"
  chmod 755 "$RUN/pg_ctl"
  "$RUN/pg_ctl" -w -t 60 start >/dev/null || {
    echo "test-pg: the server did not start" >&2; tail -n 30 "$LOG" >&2; exit 1; }
  for _ in $(seq 1 150); do
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.2
  done
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" || {
    echo "test-pg: pg_isready failed on port $PORT" >&2; tail -n 30 "$LOG" >&2; exit 1; }
  (umask 077; printf 'postgresql://osbuildd:%s@127.0.0.1:%s/postgres\n' "$pw" "$PORT" >"$RUN/pg.url")
  echo "test-pg: PostgreSQL $(basename "$(dirname "$PGBIN")") on 127.0.0.1:$PORT (URL in $RUN/pg.url)"
}

case "${1:-start}" in
start) do_start ;;
stop) do_stop ;;
status)
  pid=$(live_pid)
  if [ -n "$pid" ] && "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
    echo "test-pg: running (pid $pid, 127.0.0.1:$PORT)"
  else
    echo "test-pg: not running"; exit 3
  fi
  ;;
*)
  echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
