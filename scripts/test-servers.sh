#!/usr/bin/env bash
# Starts (start) or stops (stop) the protocol servers the tests talk to, on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${OSBUILDD_TEST_RUN:-/var/tmp/osbuildd-test/servers}
mkdir -p "$RUN"
case "${1:-start}" in
start)
  "$0" stop >/dev/null 2>&1 || true
  .venv/bin/moto_server -H 127.0.0.1 -p 5000 >"$RUN/moto.log" 2>&1 &
  echo $! >"$RUN/moto.pid"
  .tools/npm/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort 10000 --location "$RUN/azurite" \
    --skipApiVersionCheck --loose >"$RUN/azurite.log" 2>&1 &
  echo $! >"$RUN/azurite.pid"
  .venv/bin/gcp-storage-emulator start --host 127.0.0.1 --port 9023 --in-memory >"$RUN/gcs.log" 2>&1 &
  echo $! >"$RUN/gcs.pid"
  for port in 5000 10000 9023; do
    for _ in $(seq 1 100); do
      (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
      sleep 0.2
    done
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null || { echo "test-servers: port $port did not open" >&2; tail -20 "$RUN"/*.log >&2; exit 1; }
  done
  echo "test-servers: moto :5000, azurite :10000, gcs :9023"
  ;;
stop)
  for n in moto azurite gcs; do
    [ -f "$RUN/$n.pid" ] && kill "$(cat "$RUN/$n.pid")" 2>/dev/null || true
    rm -f "$RUN/$n.pid"
  done
  ;;
esac
