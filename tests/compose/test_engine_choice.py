"""Which engine runs a manifest, and with which arguments.

Upstream osbuild can't be installed on this Debian host, so "upstream osbuild" is
tests/runner/fake_osbuild.py: it replays a real osbuild 191 run (tests/data/osbuild/: its JSONSeq
monitor stream and --json result) and records the argv and stage types it was given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from osbuildd.config import Config
from osbuildd.executor import start_local
from osbuildd.runner import engines, resolve_osbuild, run_osbuild
from osbuildd.services import Services

from .helpers import FAKE_OSBUILD, enqueue_manifest, wait_state

DATA = Path(__file__).parent.parent / "data" / "osbuild"


@pytest.fixture
def record(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FAKE_OSBUILD_NOTES", str(DATA))
    monkeypatch.setenv("FAKE_OSBUILD_MODE", "success")
    path = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_OSBUILD_RECORD", str(path))
    return path


def manifest(*types: str) -> dict:
    return {"version": "2", "pipelines": [{"name": "tree", "stages": [{"type": t} for t in types]}]}


async def test_config_size_reaches_osbuild_as_bytes(tmp_path, record):
    # "20Gi" passed the config check but upstream osbuild refuses it: the runner hands over bytes
    state = tmp_path / "state"
    cfg = tmp_path / "osbuildd.toml"
    cfg.write_text(f'state_dir = "{state}"\n[weldr]\nsocket = "{tmp_path}/api.socket"\n'
                   f'[builder]\ncache_max_size = "20Gi"\nosbuild = "{FAKE_OSBUILD}"\n')
    config = Config.load(cfg)
    assert config.builder.cache_max_bytes == 20 * 2**30
    s = await Services.open(config)
    await start_local(s)
    try:
        cid = await enqueue_manifest(s, manifest("org.osbuild.mkdir"), exports=["tree"], filename="x")
        await wait_state(s, cid, {"finished", "failed"}, 60)
    finally:
        await s.close()
    argv = json.loads(record.read_text())["argv"]
    assert argv[0] == str(FAKE_OSBUILD)                       # the explicit [builder] osbuild path is used as is
    assert argv[argv.index("--cache-max-size") + 1] == "21474836480"


@pytest.fixture
def upstream_on_path(tmp_path, monkeypatch) -> Path:
    """A fake upstream ``osbuild`` first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "osbuild").symlink_to(FAKE_OSBUILD)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return bindir / "osbuild"


DEBIAN = manifest("org.osbuildd.debian.bootstrap", "org.osbuild.mkdir")
RPM = manifest("org.osbuild.rpm", "org.osbuild.mkdir")
PLAIN = manifest("org.osbuild.mkdir", "org.osbuild.tar")


def is_bundled(argv: list[str]) -> bool:
    return argv[0].endswith("osbuildd-engine") or argv[-1] == "osbuildd.engine.cli"


def test_bundled_engine_lists_come_from_its_files():
    have = engines.bundled()
    assert "org.osbuildd.debian.bootstrap" in have["stages"] and "org.osbuild.rpm" not in have["stages"]
    assert "org.osbuild.curl" in have["sources"] and "org.osbuild.loopback" in have["devices"]
    assert engines.missing_in_bundled(RPM) == ["org.osbuild.rpm"]
    assert engines.missing_in_bundled({"version": "2", "sources": {"org.osbuild.ostree": {}},
                                       "pipelines": []}) == ["org.osbuild.ostree"]


def test_auto_picks_per_manifest_with_upstream_installed(upstream_on_path):
    assert is_bundled(resolve_osbuild("auto", DEBIAN))                # upstream can't run org.osbuildd.*
    assert resolve_osbuild("auto", RPM) == [str(upstream_on_path)]    # the bundled engine lacks rpm
    assert resolve_osbuild("auto", PLAIN) == [str(upstream_on_path)]  # both can: upstream, as before
    with pytest.raises(engines.NoEngine, match="lacks org.osbuild.rpm and it also uses org.osbuildd"):
        resolve_osbuild("auto", manifest("org.osbuildd.debian.bootstrap", "org.osbuild.rpm"))
    # an explicit path is used as is, whatever the manifest
    assert resolve_osbuild(str(FAKE_OSBUILD), DEBIAN) == [str(FAKE_OSBUILD)]


def test_auto_without_upstream(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))   # no osbuild on PATH
    assert is_bundled(resolve_osbuild("auto", DEBIAN)) and is_bundled(resolve_osbuild("auto", PLAIN))
    with pytest.raises(engines.NoEngine, match="lacks org.osbuild.rpm and upstream osbuild is not installed"):
        resolve_osbuild("auto", RPM)


async def test_rpm_manifest_runs_on_upstream(tmp_path, record, upstream_on_path):
    res = await run_osbuild(RPM, osbuild="auto", store=tmp_path / "store", outdir=tmp_path / "out",
                            exports=["tree"], checkpoints=[], cache_max_size="20Gi", stage_timeout=None,
                            on_progress=None, log_dir=tmp_path / "logs", state_dir=tmp_path)
    rec = json.loads(record.read_text())
    assert rec["argv"][0] == str(upstream_on_path) and "org.osbuild.rpm" in rec["stages"]
    assert res.returncode == 0
