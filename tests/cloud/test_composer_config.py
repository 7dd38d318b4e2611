"""``osbuildd serve --composer-config``: osbuild-composer's osbuild-composer.toml mapped onto osbuildd's
config ([koji] -> [cloud], [worker] -> [worker_api], [distro_aliases]); osbuildd.toml's keys win;
unused keys named once in one log line, never their values."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from foundation.daemon_helpers import free_port

from osbuildd import composerconfig
from osbuildd.config import Config, ConfigError

from .tlsutil import CLOUD, client_context, get, passed_auth, serve, stop, write_config

UPSTREAM = """\
log_level = "debug"
dnf-json = "/usr/libexec/osbuild-depsolve-dnf"
[koji]
enable_tls = true
enable_mtls = true
allowed_domains = ["client.osbuild.org"]
ca = "{ca}"
[worker]
enable_tls = false
enable_mtls = false
base_path = "/api/image-builder-worker/v1"
request_job_timeout = "1m30s"
worker_heartbeat_timeout = "2h"
enable_artifacts = false
pg_host = "db.example"
pg_password = "s3cret-value"
[weldr_api.distros."rhel-*"]
image_type_denylist = ["ec2"]
[distro_aliases]
rhel-9 = "rhel-9.4"
debian = "debian-12"
"""


def _load(tmp_path: Path, upstream: str, own: str = "") -> tuple[Config, composerconfig.ComposerConfig]:
    up = tmp_path / "osbuild-composer.toml"
    up.write_text(upstream)
    composer = composerconfig.load(up)
    assert composer is not None
    mine = tmp_path / "osbuildd.toml"
    mine.write_text(own)
    return Config.load(mine, base=composer.table, base_source=up), composer


def test_mapping_defaults_and_ignored(tmp_path: Path) -> None:
    config, composer = _load(tmp_path, UPSTREAM.format(ca="/srv/ca.pem"))
    assert config.cloud.allowed_domains == ["client.osbuild.org"]
    assert config.cloud.ca == "/srv/ca.pem" and config.cloud.mtls
    # upstream's fixed server files, and its CA file where [worker] sets none
    assert config.cloud.cert == "/etc/osbuild-composer/composer-crt.pem"
    assert config.cloud.key == "/etc/osbuild-composer/composer-key.pem"
    assert config.worker_api.ca == "/etc/osbuild-composer/ca-crt.pem"
    assert not config.worker_api.enable_tls and not config.worker_api.enable_mtls
    assert config.distros.aliases == {"rhel-8": "rhel-8.10", "rhel-9": "rhel-9.4", "rhel-10": "rhel-10.0",
                                      "debian": "debian-12"}
    # [worker]'s own keys, durations in seconds
    assert config.worker_api.base_path == "/api/image-builder-worker/v1"
    assert config.worker_api.request_job_timeout == 90.0 and config.worker_api.worker_heartbeat_timeout == 7200.0
    assert config.worker_api.enable_artifacts is False
    assert sorted(composer.ignored) == sorted(["log_level", "dnf-json", "worker.pg_host",
                                               "worker.pg_password", "weldr_api.distros.rhel-*.image_type_denylist"])


def test_osbuildd_keys_win(tmp_path: Path) -> None:
    own = ('[cloud]\nca = "/own/ca.pem"\ncert = "/own/crt.pem"\n[distros.aliases]\nrhel-9 = "rhel-9.6"\n'
           '[worker_api]\nenable_tls = true\nenable_mtls = true\n')
    config, _ = _load(tmp_path, UPSTREAM.format(ca="/srv/ca.pem"), own)
    assert config.cloud.ca == "/own/ca.pem" and config.cloud.cert == "/own/crt.pem"
    assert config.cloud.key == "/etc/osbuild-composer/composer-key.pem"          # not set in osbuildd.toml
    assert config.cloud.allowed_domains == ["client.osbuild.org"]   # from [koji]
    assert config.worker_api.enable_tls and config.worker_api.enable_mtls
    assert config.distros.aliases["rhel-9"] == "rhel-9.6" and config.distros.aliases["debian"] == "debian-12"


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("20s", 20.0), ("1h30m", 5400.0), ("1.5m", 90.0),
                                               ("250ms", 0.25), (".5h", 1800.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert composerconfig.go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "20", "s", "1d", "-5s", "1h 2m", "20s!"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        composerconfig.go_duration(text)


def test_upstream_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"osbuild-composer.toml: koji.allowed_domains: must be a list of strings"):
        _load(tmp_path, '[koji]\nallowed_domains = "x"\n')
    with pytest.raises(ConfigError, match=r"\(with .*osbuild-composer.toml\): cloud.enable_mtls: .*exactly one"):
        _load(tmp_path, "[koji]\nenable_jwt = true\njwt_keys_urls = [\"/k.json\"]\n")
    with pytest.raises(ConfigError, match=r"osbuild-composer.toml: worker.request_job_timeout: invalid duration '20 s'"):
        _load(tmp_path, '[worker]\nrequest_job_timeout = "20 s"\n')
    with pytest.raises(ConfigError, match=r"worker.request_job_timeout: must be a duration string"):
        _load(tmp_path, '[worker]\nrequest_job_timeout = 20\n')
    with pytest.raises(ConfigError, match=r"worker_api.base_path: must start with /"):
        _load(tmp_path, '[worker]\nbase_path = "api/worker/v1/"\n')
    with pytest.raises(ConfigError, match=r"syntax"):
        _load(tmp_path, "[koji\n")
    assert composerconfig.load("") is None


async def test_serve_reads_it_and_names_ignored_keys_once(tmp_path: Path, certs: Path) -> None:
    up = tmp_path / "osbuild-composer.toml"
    up.write_text(UPSTREAM.format(ca=certs / "ca-crt.pem"))
    port = free_port()
    # the server certificate from osbuildd.toml (upstream's fixed files are not on this host)
    config, _, _ = write_config(tmp_path, {"listen": f"127.0.0.1:{port}", "cert": str(certs / "composer-crt.pem"),
                                           "key": str(certs / "composer-key.pem")})
    proc, notify, log = await serve(config, tmp_path, "--composer-config", str(up))
    try:
        await notify.wait_for("READY=1", proc)

        base = f"https://localhost:{port}{CLOUD}"
        for name, ok in (("client", True), ("worker", False)):   # [koji] allowed_domains, ca
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_context(certs, name))) as s:
                answer = await get(s, f"{base}/composes/")
                assert passed_auth(answer) == ok and (ok or answer.status == 403), (name, answer)
    finally:
        assert await stop(proc) == 0, log.read_text()
        notify.close()
    text = log.read_text()
    events = [json.loads(line) for line in text.splitlines()]
    ignored = [e for e in events if "ignored" in e["event"]]
    assert len(ignored) == 1, text
    assert ignored[0]["file"] == str(up) and "worker.pg_password" in ignored[0]["keys"]
    assert "weldr_api.distros.rhel-*.image_type_denylist" in ignored[0]["keys"]
    assert "s3cret-value" not in text and "db.example" not in text


async def test_default_path_absent_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(composerconfig, "DEFAULT_PATH", tmp_path / "absent.toml")
    assert composerconfig.load(None) is None
    (tmp_path / "absent.toml").write_text("[distro_aliases]\nx = \"debian-12\"\n")
    found = composerconfig.load(None)
    assert found is not None and found.table["distros"] == {"aliases": {"x": "debian-12"}}
