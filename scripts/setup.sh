#!/usr/bin/env bash
# Installs what osbuildd needs on a Debian 12 host (as root): apt packages and a venv in .venv.
# With --test, also what the test suite needs (protocol servers, test tools).
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

export DEBIAN_FRONTEND=noninteractive
# --- runtime apt packages (engine tools, depsolve) ---
APT_PKGS=(
  python3 python3-venv python3-dev gcc bubblewrap
  mmdebstrap apt-utils debian-archive-keyring gnupg
  e2fsprogs dosfstools mtools fdisk util-linux
  grub-pc-bin grub-efi-amd64-bin grub2-common
  qemu-utils tar zstd xz-utils pigz ca-certificates curl
  python3-dnf createrepo-c rpm
  nodejs npm   # the web UI is built from web/ at set-up (npm ci && npm run build)
)
# --- test-only apt packages ---
APT_TEST_PKGS=(
  qemu-system-x86 ovmf skopeo systemd openssl iproute2 procps
  chromium fonts-dejavu-core   # the web UI's browser tests (tests/web, Playwright drives it headless)
  postgresql   # the tests' private cluster (scripts/test-pg.sh); pg_stat_statements ships in it
)
pkgs=("${APT_PKGS[@]}")
[ $want_test = 1 ] && pkgs+=("${APT_TEST_PKGS[@]}")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere on the machine; only install when absent
if [ ${#missing[@]} -gt 0 ]; then
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in
      nodejs) command -v node >/dev/null || filtered+=("$p") ;;
      npm) command -v npm >/dev/null || filtered+=("$p") ;;
      *) filtered+=("$p") ;;
    esac
  done
  # a fresh postgresql install would create and start the system "main" cluster, which the tests do not
  # use: postgresql-common's postinst reads create_main_cluster from createcluster.conf, which includes
  # createcluster.d/ (a drop-in there, since ucf owns createcluster.conf itself)
  if [[ " ${filtered[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.d/osbuildd.conf ]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/osbuildd.conf
  fi
  if [ ${#filtered[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${filtered[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
fi
if [ $want_test = 1 ]; then
  .venv/bin/pip install -q -e '.[test]'
  # azurite (Azure blob protocol server) from npm, kept inside the checkout
  if [ ! -x .tools/npm/node_modules/.bin/azurite-blob ]; then
    mkdir -p .tools/npm
    npm install --prefix .tools/npm --no-audit --no-fund --silent azurite@3 >/dev/null
  fi
else
  .venv/bin/pip install -q -e .
fi
# the web UI (web/, Vite): built into osbuildd/web/static, which the daemon serves; rebuilt when a
# source is newer than the last build
if [ -f web/package.json ]; then
  stamp=osbuildd/web/static/index.html
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
    (cd web && npm ci --no-audit --no-fund --silent) >/dev/null
    touch web/node_modules
  fi
  if [ ! -f "$stamp" ] || [ -n "$(find web -path web/node_modules -prune -o -newer "$stamp" -type f -print -quit)" ]; then
    (cd web && npm run --silent build) >/dev/null
  fi
fi
echo "setup: done"
