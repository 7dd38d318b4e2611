"""run_osbuild: the subprocess contract, with the real engine and with a replay of real osbuild output."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from testdata import OSBUILD, data_file

from osbuildd.runner import resolve_osbuild, run_osbuild
from osbuildd.runner.cleanup import loops_backed_under, mounts_under, processes_marked

FAKE = Path(__file__).with_name("fake_osbuild.py")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def run(tmp_path: Path, manifest: dict, osbuild, **kw):
    progress: list[dict] = []

    async def on_progress(p):
        progress.append(p.to_dict())

    kw.setdefault("stage_timeout", None)
    kw.setdefault("cancel", asyncio.Event())
    res = await run_osbuild(manifest, osbuild=osbuild, store=tmp_path / "store", outdir=tmp_path / "out",
                            exports=kw.pop("exports", ["archive"]), checkpoints=kw.pop("checkpoints", []),
                            cache_max_size="1GiB", on_progress=on_progress, log_dir=tmp_path / "logs",
                            state_dir=tmp_path, cleanup_paths=[tmp_path / "store"], **kw)
    return res, progress


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("FAKE_OSBUILD_NOTES", str(OSBUILD))

    def make(mode: str) -> list[str]:
        monkeypatch.setenv("FAKE_OSBUILD_MODE", mode)
        return [sys.executable, str(FAKE)]
    return make


@pytest.fixture(scope="module")
def tiny() -> dict:
    return json.loads(data_file("osbuild", "tiny-tar.manifest.json").read_text())


def test_resolve_osbuild_auto_and_missing():
    argv = resolve_osbuild("auto")
    assert argv and (argv[0].endswith(("osbuild", "osbuildd-engine")) or argv[-1] == "osbuildd.engine.cli")
    with pytest.raises(RuntimeError, match="no-such-osbuild"):
        resolve_osbuild("/nonexistent/no-such-osbuild")


async def test_real_engine_tiny_manifest(tmp_path, tiny, require_root):
    res, progress = await run(tmp_path, tiny, "auto", checkpoints=["tree"])
    assert res.success, (res.error, res.stderr_tail, res.failed_stage)
    assert res.returncode == 0 and res.output["success"] is True
    tar = tmp_path / "out" / "archive" / "tree.tar"
    assert tar.is_file() and tar.stat().st_size > 0
    pcts = [p["percent"] for p in progress]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0
    log = (tmp_path / "logs" / "osbuild.log").read_text()
    assert "org.osbuild.hostname" in log
    stage_logs = list((tmp_path / "logs" / "stages").glob("*.log"))
    assert len(stage_logs) >= 4   # mkdir, copy, hostname, tar
    # the engine's own result names the same stages the monitor reported
    logged = {st["id"] for sts in res.output["log"].values() for st in sts}
    assert {p.stem for p in stage_logs} <= logged | {r.get("id") for r in res.stage_results}
    # the per-stage timings are the engine's result's
    assert res.timings is not None and res.timings["origin"] == "result"
    assert [s["id"] for s in res.timings["stages"]] == [st["id"] for sts in res.output["log"].values() for st in sts]


async def test_replayed_success_progress_and_logs(tmp_path, fake):
    res, progress = await run(tmp_path, {"version": "2"}, fake("success"))
    assert res.success and res.kind is None and res.error is None
    pcts = [p["percent"] for p in progress]
    assert pcts == sorted(pcts) and pcts[-1] == 100.0
    assert len(progress) < 10   # bounded rate: 28 records do not become 28 writes
    stages = tmp_path / "logs" / "stages"
    texts = {p.name: p.read_text() for p in stages.glob("*.log")}
    assert any("/run/osbuild/tree/etc/hostname written." in t for t in texts.values()), texts.keys()
    assert len(texts) == 4
    main = (tmp_path / "logs" / "osbuild.log").read_text()
    assert "Starting module org.osbuild.copy" in main and "copying '/run/osbuild/inputs" in main
    # upstream's result has no timings: the stream's durations give them
    assert res.timings is not None and res.timings["origin"] == "monitor"
    assert [(s["pipeline"], s["type"]) for s in res.timings["stages"]] == [
        ("tree", "org.osbuild.mkdir"), ("tree", "org.osbuild.copy"), ("tree", "org.osbuild.hostname"),
        ("archive", "org.osbuild.tar")]


async def test_replayed_stage_failure(tmp_path, fake):
    res, _ = await run(tmp_path, {"version": "2"}, fake("failure"))
    assert not res.success and res.kind == "failed" and res.returncode == 1
    assert res.failed_stage["name"] == "org.osbuild.error"
    assert res.error == "stage org.osbuild.error failed"
    assert res.failing_lines()[-1] == "Error stage will now return error: 3"


async def test_crash_with_empty_stdout(tmp_path, fake):
    res, _ = await run(tmp_path, {"version": "2"}, fake("crash"))
    assert not res.success and res.kind == "crashed" and res.output is None
    assert "osbuild did not return any output" in res.error and "mount failed" in res.error
    assert "Traceback" in res.stderr_tail
    # no result, but the stream timed the stages that ran; the total covers them (the replay's
    # recorded durations are longer than the replay itself)
    assert res.timings is not None and len(res.timings["stages"]) == 4
    assert res.timings["total"] >= max(res.duration, sum(s["duration"] for s in res.timings["stages"]))


async def test_missing_binary_is_a_clear_error(tmp_path):
    res, _ = await run(tmp_path, {"version": "2"}, ["/nonexistent/osbuild"])
    assert not res.success and res.kind == "crashed" and "cannot start osbuild" in res.error


def _has_text(path: Path) -> bool:
    return path.exists() and bool(path.read_text())


async def _wait_file(path: Path) -> None:
    for _ in range(200):
        if _has_text(path):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize("mode", ["hang", "stubborn"])
async def test_cancel_kills_the_group(tmp_path, fake, mode):
    cancel = asyncio.Event()
    task = asyncio.create_task(run(tmp_path, {"version": "2"}, fake(mode), cancel=cancel, grace=1.0))
    await _wait_file(tmp_path / "store" / "fake.pid")
    pid = int((tmp_path / "store" / "fake.pid").read_text())
    await asyncio.sleep(0.3)
    assert processes_marked(tmp_path)   # the marker recovery relies on is in the child's env
    cancel.set()
    res, _ = await task
    assert res.kind == "canceled" and not res.success
    assert not alive(pid)
    assert processes_marked(tmp_path) == {}   # the forked "stage" child is gone too
    assert "canceled" in (tmp_path / "logs" / "osbuild.log").read_text()


async def test_stage_timeout(tmp_path, fake):
    res, _ = await run(tmp_path, {"version": "2"}, fake("hang"), stage_timeout=1.0, grace=1.0)
    assert res.kind == "timeout" and not res.success
    assert "org.osbuild.mkdir exceeded the stage timeout" in res.error
    assert processes_marked(tmp_path) == {}


async def test_cleanup_unmounts_and_detaches(tmp_path, require_root):
    from osbuildd.runner.cleanup import cleanup_under
    need = tmp_path / "store" / "tmp"
    (need / "mnt").mkdir(parents=True)
    img = need / "disk.img"
    os.truncate(img, 8 << 20) if img.exists() else img.write_bytes(b"\0" * (8 << 20))
    proc = await asyncio.create_subprocess_exec("losetup", "--show", "-f", str(img),
                                                stdout=asyncio.subprocess.PIPE)
    dev = (await proc.communicate())[0].decode().strip()
    assert dev.startswith("/dev/loop")
    assert (await (await asyncio.create_subprocess_exec("mount", "-t", "tmpfs", "tmpfs",
                                                        str(need / "mnt"))).wait()) == 0
    assert mounts_under([tmp_path]) == [str((need / "mnt").resolve())]
    assert loops_backed_under([tmp_path]) == [dev]
    done = await cleanup_under([tmp_path / "store"])
    assert done["detached"] == [dev]
    assert mounts_under([tmp_path]) == [] and loops_backed_under([tmp_path]) == []
