"""The daemon as the Weldr benches run it: `osbuildd serve` on a private state dir, no local
executor (composes are measured, never built), warnings-only JSON logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_daemon(state: Path, socket_path: Path) -> subprocess.Popen:
    conf = state / "osbuildd.toml"
    conf.write_text(f'state_dir = "{state}"\nlog_level = "warning"\nlog_format = "json"\n'
                    f'[weldr]\nsocket = "{socket_path}"\n[builder]\nlocal_executor = false\n')
    return subprocess.Popen([sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(conf)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
