"""The [web] section's checks: local mode only where nobody else can connect, the keys' values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from osbuildd.config import Config, ConfigError


@pytest.mark.parametrize("listen", ["0.0.0.0:8700", "192.0.2.1:8700", ":8700", "[::]:8700", "example.com:80"])
def test_local_mode_off_loopback_is_a_config_error(listen: str) -> None:
    with pytest.raises(ConfigError, match=r"^<config>: web\.listen: .*not a loopback address") as e:
        Config.from_dict({"web": {"listen": listen}})
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("web", [
    {"listen": "0.0.0.0:8700", "trust_proxy": True},
    {"listen": "0.0.0.0:8700", "mode": "hosted"},
    {"listen": "127.0.0.1:8700"}, {"listen": "[::1]:8700"}, {"listen": "localhost:8700"},
    {"listen": "unix:/run/osbuildd/web.sock"}, {},
])
def test_accepted_web_configs(web: dict[str, object]) -> None:
    cfg = Config.from_dict({"web": web})
    assert cfg.web.mode in ("local", "hosted")


@pytest.mark.parametrize(("web", "key"), [({"mode": "public"}, "web.mode"), ({"org_id": ""}, "web.org_id"),
                                          ({"static_dir": "rel/dir"}, "web.static_dir"),
                                          ({"listen": "nonsense"}, "web.listen")])
def test_bad_web_keys(web: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^<config>: {key.replace('.', '[.]')}: "):
        Config.from_dict({"web": web})


def test_serve_refuses_local_mode_on_all_addresses(tmp_path: Path, repo_root: Path) -> None:
    config = tmp_path / "osbuildd.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[weldr]\nsocket = "{tmp_path / "w.sock"}"\n'
                      '[web]\nlisten = "0.0.0.0:8700"\n')
    env = {k: v for k, v in os.environ.items() if k != "OSBUILDD_CONFIG"} | {"PYTHONPATH": str(repo_root)}
    proc = subprocess.run([sys.executable, "-m", "osbuildd.cli", "serve", "--config", str(config)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "web.listen" in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "state").exists()
