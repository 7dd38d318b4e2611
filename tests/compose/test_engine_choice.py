"""Which engine runs a manifest, and with which arguments.

Upstream osbuild can't be installed on this Debian host, so "upstream osbuild" is
tests/runner/fake_osbuild.py: it replays a real osbuild 191 run (tests/data/osbuild/: its JSONSeq
monitor stream and --json result) and records the argv and stage types it was given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from osbuildd.compose import attach
from osbuildd.config import Config
from osbuildd.services import Services

from .helpers import enqueue_manifest, wait_state

FAKE = Path(__file__).parent.parent / "runner" / "fake_osbuild.py"
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
                   f'[builder]\ncache_max_size = "20Gi"\nosbuild = "{FAKE}"\n')
    config = Config.load(cfg)
    assert config.builder.cache_max_bytes == 20 * 2**30
    s = await Services.open(config)
    await attach(s)
    try:
        cid = await enqueue_manifest(s, manifest("org.osbuild.mkdir"), exports=["tree"], filename="x")
        await wait_state(s, cid, {"finished", "failed"}, 60)
    finally:
        await s.close()
    argv = json.loads(record.read_text())["argv"]
    assert argv[0] == str(FAKE)                       # the explicit [builder] osbuild path is used as is
    assert argv[argv.index("--cache-max-size") + 1] == "21474836480"
