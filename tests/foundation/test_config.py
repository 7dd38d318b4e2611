"""Configuration loading and the CLI's handling of bad configuration."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest

from osbuildd import cli
from osbuildd.config import Config, ConfigError, Listen, parse_size


def test_defaults_match_contract() -> None:
    c = Config()
    assert c.state_dir == Path("/var/lib/osbuildd")
    assert c.weldr.socket == Path("/run/weldr/api.socket") and c.weldr.max_body_size == 16777216
    assert c.cloud.address is None and c.builder.max_parallel == 1 and c.builder.osbuild == "auto"
    assert c.builder.cache_max_bytes == 20 * 1024**3
    assert c.db_path == Path("/var/lib/osbuildd/osbuildd.db")


def test_etc_osbuildd_toml_documents_every_key_with_its_default(repo_root: Path) -> None:
    path = repo_root / "etc" / "osbuildd.toml"
    data = tomllib.loads(path.read_text())
    loaded = Config.load(path)
    defaults = asdict(Config())
    documented = asdict(loaded)
    for section in (documented, defaults):
        section.pop("source")
    assert documented == defaults

    def keys(d: dict, prefix: str = "") -> set[str]:
        out = set()
        for k, v in d.items():
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    assert keys(data) == keys(defaults)


def test_load_full_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('state_dir = "/srv/ob"\n[builder]\nmax_parallel = 3\nstage_timeout = 60\n'
                    '[cloud]\nlisten = "127.0.0.1:8080"\n[worker_api]\nlisten = "unix:/run/w.sock"\n')
    c = Config.load(path)
    assert c.source == path and c.state_dir == Path("/srv/ob") and c.builder.max_parallel == 3
    assert c.builder.stage_timeout == 60.0
    assert c.cloud.address == Listen(host="127.0.0.1", port=8080)
    assert c.worker_api.address == Listen(path=Path("/run/w.sock"))


def test_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text('log_level = "debug"\n')
    monkeypatch.setenv("OSBUILDD_CONFIG", str(path))
    assert Config.load().log_level == "debug"


@pytest.mark.parametrize("text, message", [
    ('bogus = 1', "bogus: unknown key"),
    ('[builder]\nmax_paralel = 2', "builder.max_paralel: unknown key"),
    ('[builder]\nmax_parallel = "2"', "builder.max_parallel: must be an integer"),
    ('[builder]\nmax_parallel = 0', "builder.max_parallel: must be at least 1"),
    ('[builder]\nlocal_executor = 1', "builder.local_executor: must be a boolean"),
    ('[builder]\ncache_max_size = "lots"', "builder.cache_max_size: the size string is not a valid positive float number"),
    ('[builder]\ncache_max_size = "20 gigs"', "builder.cache_max_size: unknown data size units in string: 20 gigs"),
    ('[cloud]\nlisten = "8080"', "cloud.listen: expected"),
    ('[image_builder]\nlisten = "unix:relative"', "image_builder.listen: unix socket path must be absolute"),
    ('log_format = "xml"', "log_format: must be one of"),
    ('state_dir = "relative"', "state_dir: must be an absolute path"),
    ('weldr = "x"', "weldr: must be a table"),
    ('[weldr\n', "syntax:"),
])
def test_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        Config.load(path)
    assert str(exc.value).startswith(f"{path}: ")
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_embedded_default(tmp_path: Path) -> None:
    c = Config.embedded(tmp_path / "st")
    assert c.state_dir == tmp_path / "st" and c.weldr.socket == tmp_path / "st" / "api.socket"
    assert c.cloud.address is None and c.image_builder.address is None and c.worker_api.address is None


def test_parse_size() -> None:
    assert parse_size("20GiB") == 20 * 1024**3
    assert parse_size("500MB") == 500 * 1000**2
    assert parse_size(42) == 42
    with pytest.raises(ValueError):
        parse_size("-1G")


def _cli(repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osbuildd.cli", *args], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("text", ['[builder]\nmax_parallel = "many"', "nope = 1", "[[["])
def test_cli_config_error_is_one_line_exit_2(tmp_path: Path, repo_root: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    res = _cli(repo_root, "serve", "--config", str(path))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"osbuildd: {path}: ")
    assert "Traceback" not in res.stderr


def test_cli_missing_config_file(tmp_path: Path, repo_root: Path) -> None:
    res = _cli(repo_root, "serve", "--config", str(tmp_path / "absent.toml"))
    assert res.returncode == 2
    assert res.stderr.strip() == f"osbuildd: {tmp_path / 'absent.toml'}: cannot read: No such file or directory"


def test_cli_bad_usage_exit_2(repo_root: Path) -> None:
    assert _cli(repo_root, "serve", "--bogus").returncode == 2
    assert _cli(repo_root).returncode == 2


def test_cli_missing_subcommand_module(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(cli.DISPATCH, "frobnicate", "osbuildd.cli_frobnicate_absent")
    assert cli.main(["frobnicate", "--x"]) == 2
    assert capsys.readouterr().err == "osbuildd: 'frobnicate' is not available\n"


def test_cli_dispatches_argv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mod = tmp_path / "cli_probe_mod.py"
    mod.write_text("seen = []\ndef main(argv):\n    seen.append(argv)\n    return 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.DISPATCH, "probe", "cli_probe_mod")
    assert cli.main(["probe", "--flag", "x"]) == 7
    import cli_probe_mod  # type: ignore[import-not-found]

    assert cli_probe_mod.seen == [["--flag", "x"]]


def test_cli_corrupt_database_is_one_line_exit_1(tmp_path: Path, repo_root: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "osbuildd.db").write_bytes(bytes(range(256)) * 32)
    res = _cli(repo_root, "serve", "--state-dir", str(state))
    assert res.returncode == 1
    assert res.stderr == f"osbuildd: {state / 'osbuildd.db'}: file is not a database\n"


@pytest.mark.parametrize("text, message", [
    ('[cloud]\nlisten = "0.0.0.0:443"\nenable_jwt = true\njwt_keys_urls = ["/k.json"]',
     "cloud.enable_mtls: with enable_tls = true exactly one of enable_mtls or enable_jwt must be true"),
    ('[worker_api]\nenable_mtls = false', "worker_api.enable_mtls: with enable_tls = true exactly one"),
    ('[cloud]\ncert = ""', "cloud.cert: must be set when enable_tls = true"),
    ('[worker_api]\nkey = ""', "worker_api.key: must be set when enable_tls = true"),
    ('[cloud]\nenable_tls = false\nenable_jwt = true', "cloud.jwt_keys_urls: must list at least one"),
    ('[cloud]\nenable_mtls = false\nenable_jwt = true\njwt_keys_urls = ["http://sso/certs"]',
     "cloud.jwt_keys_urls: must be https:// URLs or absolute file paths"),
    ('[cloud]\nenable_mtls = false\nenable_jwt = true\njwt_keys_urls = ["/k"]\njwt_tenant_provider_fields = []',
     "cloud.jwt_tenant_provider_fields: must name at least one claim"),
    ('[cloud]\nallowed_domains = "x"', "cloud.allowed_domains: must be a list of strings"),
    ('[cloud]\nenable_tls = "yes"', "cloud.enable_tls: must be a boolean"),
    ('[distros]\naliases = { rhel-9 = 9 }', "distros.aliases: must be a table of strings"),
])
def test_tls_and_auth_validation(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        Config.load(path)
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value) and "\n" not in str(exc.value)


def test_tls_and_auth_defaults_and_local_listener() -> None:
    c = Config()
    for section in (c.cloud, c.worker_api):   # upstream's [koji] / [worker] defaults
        assert section.enable_tls and section.enable_mtls and not section.enable_jwt and section.mtls
        assert section.cert == "/etc/osbuildd/composer-crt.pem" and section.key == "/etc/osbuildd/composer-key.pem"
        assert section.ca == "/etc/osbuildd/ca-crt.pem" and section.allowed_domains == []
        assert section.jwt_tenant_provider_fields == ["rh-org-id"]
    assert c.distros.aliases == {"rhel-8": "rhel-8.10", "rhel-9": "rhel-9.6", "rhel-10": "rhel-10.0"}
    # a unix listener is local: the TLS/auth keys are not checked (here both mTLS and JWT off)
    local = Config.from_toml('[cloud]\nlisten = "unix:/run/c.sock"\nenable_mtls = false\ncert = ""\n')
    assert local.cloud.local and local.cloud.address == Listen(path=Path("/run/c.sock"))
    # upstream's JWT test setup: no TLS, JWT on
    jwt = Config.from_toml('[cloud]\nlisten = "127.0.0.1:80"\nenable_tls = false\nenable_mtls = false\n'
                           'enable_jwt = true\njwt_keys_urls = ["https://sso.example/certs", "file:///k.json"]\n')
    assert not jwt.cloud.mtls and jwt.cloud.enable_jwt
    merged = Config.from_toml('[distros.aliases]\nrhel-9 = "rhel-9.4"\ndebian = "debian-12"\n')
    assert merged.distros.aliases == {"rhel-8": "rhel-8.10", "rhel-9": "rhel-9.4", "rhel-10": "rhel-10.0",
                                      "debian": "debian-12"}
