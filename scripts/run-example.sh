#!/usr/bin/env bash
# The main job: builds the example image (examples/debian-qcow2.toml) with `osbuildd build` — the
# daemon's own compose service, job graph, runner and engine — into ./out/, on the state folder
# ./.state (kept between runs, so a second build reuses the engine store), and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/osbuildd ] || { echo "run-example: run scripts/setup.sh first" >&2; exit 2; }
mkdir -p out .state
image=$(.venv/bin/osbuildd build --distro debian-12 --type qcow2 \
  --blueprint examples/debian-qcow2.toml --state-dir .state --output out "$@")
echo "image: $(realpath "$image")"
