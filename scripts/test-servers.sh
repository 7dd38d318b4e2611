#!/usr/bin/env bash
# Starts (start) or stops (stop) the protocol servers the upload tests talk to, on loopback:
# moto (S3 + EC2), azurite (Azure blob), gcp-storage-emulator (GCS), and a private PostgreSQL
# cluster (scripts/test-pg.sh).
# Addresses come from OSBUILDD_TEST_MOTO / OSBUILDD_TEST_AZURITE / OSBUILDD_TEST_GCS (defaults below),
# so a private set can run beside the shared one: each set keeps its pids in its own OSBUILDD_TEST_RUN.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${OSBUILDD_TEST_RUN:-/var/tmp/osbuildd-test/servers}
MOTO=${OSBUILDD_TEST_MOTO:-http://127.0.0.1:5000}
AZURITE=${OSBUILDD_TEST_AZURITE:-http://127.0.0.1:10000}
GCS=${OSBUILDD_TEST_GCS:-http://127.0.0.1:9023}
port_of() { local p=${1##*:}; echo "${p%%/*}"; }
mkdir -p "$RUN"

stop_one() {
  local pidfile=$RUN/$1.pid pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  # only our own process: the pid file names it, and it must still be that program
  if kill -0 "$pid" 2>/dev/null && grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-start}" in
start)
  "$0" stop >/dev/null 2>&1 || true
  for tool in .venv/bin/moto_server .tools/npm/node_modules/.bin/azurite-blob .venv/bin/gcp-storage-emulator; do
    [ -x "$tool" ] || { echo "test-servers: $tool missing: run scripts/setup.sh --test" >&2; exit 1; }
  done
  rm -rf "$RUN/azurite"
  .venv/bin/moto_server -H 127.0.0.1 -p "$(port_of "$MOTO")" >"$RUN/moto.log" 2>&1 &
  echo $! >"$RUN/moto.pid"
  # --skipApiVersionCheck: azure-storage-blob sends an x-ms-version newer than azurite knows.
  # --disableTelemetry: azurite would otherwise try to reach its telemetry host on every start.
  .tools/npm/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$(port_of "$AZURITE")" \
    --location "$RUN/azurite" --skipApiVersionCheck --loose --silent --disableTelemetry >"$RUN/azurite.log" 2>&1 &
  echo $! >"$RUN/azurite.pid"
  .venv/bin/gcp-storage-emulator start --host 127.0.0.1 --port "$(port_of "$GCS")" --in-memory \
    >"$RUN/gcs.log" 2>&1 &
  echo $! >"$RUN/gcs.pid"
  for url in "$MOTO" "$AZURITE" "$GCS"; do
    port=$(port_of "$url")
    for _ in $(seq 1 150); do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
      sleep 0.2
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || {
      echo "test-servers: port $port did not open" >&2; tail -n 20 "$RUN"/*.log >&2; exit 1; }
  done
  echo "test-servers: moto $MOTO, azurite $AZURITE, gcs $GCS"
  bash scripts/test-pg.sh start
  ;;
stop)
  stop_one moto moto_server
  stop_one azurite azurite
  stop_one gcs gcp-storage-emulator
  bash scripts/test-pg.sh stop
  ;;
*)
  echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
