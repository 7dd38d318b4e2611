"""Helpers for the Debian build tests: run the engine, look inside built disks, boot them."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = [sys.executable, "-m", "osbuildd.engine.cli"]


def engine_build(manifest: dict[str, Any], store: Path, outdir: Path, exports: list[str],
                 checkpoints: list[str]) -> dict[str, Any]:
    """Run osbuildd-engine on a manifest (stdin), fail the test with the failing stage's log."""
    cmd = [*_engine_cmd(), "--store", str(store), "--output-directory", str(outdir), "--json",
           "--cache-max-size", "unlimited"]
    for e in exports:
        cmd += ["--export", e]
    for c in checkpoints:
        cmd += ["--checkpoint", c]
    cmd.append("-")
    proc = subprocess.run(cmd, input=json.dumps(manifest).encode(), capture_output=True, cwd=REPO)
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"engine exit {proc.returncode}, no JSON result; stderr:\n{proc.stderr.decode()[-4000:]}")
    if not result.get("success"):
        pytest.fail("build failed: " + json.dumps(result.get("error") or result, indent=1)[-6000:])
    return result


def _engine_cmd() -> list[str]:
    exe = shutil.which("osbuildd-engine", path=str(REPO / ".venv" / "bin"))
    return [exe] if exe else ENGINE


def partitions(disk: Path) -> list[dict[str, Any]]:
    out = subprocess.run(["sfdisk", "--json", str(disk)], check=True, capture_output=True).stdout
    return json.loads(out)["partitiontable"]["partitions"]


@contextlib.contextmanager
def mounted_partition(disk: Path, index: int) -> Iterator[Path]:
    """Loop-mount partition `index` (0-based) of a raw disk read-only; always detached after."""
    part = partitions(disk)[index]
    loop = subprocess.run(["losetup", "-r", "-f", "--show", "-o", str(part["start"] * 512),
                           "--sizelimit", str(part["size"] * 512), str(disk)],
                          check=True, capture_output=True, text=True).stdout.strip()
    mnt = Path(tempfile.mkdtemp(prefix="h3-mnt-"))
    try:
        subprocess.run(["mount", "-o", "ro,noload", loop, str(mnt)], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "-d", loop], check=False)
        mnt.rmdir()


def qemu_img_info(path: Path, fmt: str | None = None) -> dict[str, Any]:
    # a fixed VHD has its footer at the end only: qemu-img does not probe it, it must be told
    fmt_args = ["-f", fmt] if fmt else []
    out = subprocess.run(["qemu-img", "info", "--output=json", *fmt_args, str(path)],
                         check=True, capture_output=True).stdout
    return json.loads(out)


def boot_to_login(disk: Path, fmt: str, firmware: str, log: Path, timeout: float = 420) -> str:
    """Boot under SeaBIOS or OVMF (TCG, serial to a file) until `login:`; returns the serial log."""
    cmd = ["qemu-system-x86_64", "-m", "1024", "-smp", "2", "-nographic", "-monitor", "none",
           "-serial", f"file:{log}", "-net", "none",
           "-drive", f"file={disk},if=virtio,format={fmt},snapshot=on"]
    if firmware == "uefi":
        vars_copy = log.with_suffix(".vars.fd")
        shutil.copy("/usr/share/OVMF/OVMF_VARS.fd", vars_copy)
        cmd += ["-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd",
                "-drive", f"if=pflash,format=raw,file={vars_copy}"]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    text = ""
    try:
        while time.monotonic() < deadline:
            time.sleep(1)
            text = log.read_text(errors="replace") if log.exists() else ""
            if "login:" in text:
                return text
            if proc.poll() is not None:
                pytest.fail(f"qemu exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        pytest.fail(f"no login prompt within {timeout}s ({firmware}); serial tail:\n{text[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return text


def loop_devices_of(path: Path) -> list[str]:
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if str(path) in ln]
