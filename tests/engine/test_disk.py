"""Disk image stages on the host: truncate + sfdisk + mkfs.fat/ext4 + copy onto a mounted loop device,
then qemu conversions that qemu-img reads back; an OCI archive that skopeo accepts."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import need_tool

from .helpers import MANIFESTS, engine, result_json

pytestmark = pytest.mark.usefixtures("require_root")


@pytest.fixture(scope="module")
def disk_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disk")
    out = tmp / "out"
    proc, _ = engine("--store", str(tmp / "store"), "--output-directory", str(out), "--json",
                     "--export", "image", "--export", "qcow2", "--export", "vpc", "--export", "vmdk",
                     "--export", "xz", "--export", "gzip", "--export", "zstd",
                     str(MANIFESTS / "disk.json"))
    assert proc.returncode == 0, proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:]
    return out, result_json(proc), tmp


def qemu_info(path, fmt: str) -> dict:
    out = subprocess.run([need_tool("qemu-img"), "info", "-f", fmt, "--output=json", str(path)],
                         capture_output=True, check=True)
    return json.loads(out.stdout)


def test_partition_table(disk_build) -> None:
    out, _, _ = disk_build
    table = json.loads(subprocess.run([need_tool("sfdisk"), "--json", str(out / "image/disk.img")],
                                      capture_output=True, check=True).stdout)["partitiontable"]
    assert table["label"] == "gpt"
    assert table["id"] == "D209C89E-EA5E-4FBD-B161-B461CCE297E0"
    assert [(p["start"], p["size"]) for p in table["partitions"]] == [(2048, 16384), (18432, 110592)]
    assert table["partitions"][1]["name"] == "root"


def _partition(out, tmp, start: int, size: int, name: str):
    part = tmp / name
    subprocess.run(["dd", f"if={out / 'image/disk.img'}", f"of={part}", "bs=512", f"skip={start}",
                    f"count={size}", "status=none"], check=True)
    return part


def test_filesystems_and_copied_tree(disk_build) -> None:
    out, _, tmp = disk_build
    root = _partition(out, tmp, 18432, 110592, "root.ext4")
    blkid = subprocess.run(["blkid", "-o", "export", str(root)], capture_output=True, text=True, check=True).stdout
    assert "TYPE=ext4" in blkid and "UUID=0194fdc2-fa2f-4cc0-81d3-ff12045b73c8" in blkid and "LABEL=root" in blkid
    cat = subprocess.run(["debugfs", "-R", "cat /etc/hostname", str(root)], capture_output=True, text=True, check=True)
    assert cat.stdout == "diskdemo\n"
    esp = _partition(out, tmp, 2048, 16384, "esp.fat")
    blkid = subprocess.run(["blkid", "-o", "export", str(esp)], capture_output=True, text=True, check=True).stdout
    assert "TYPE=vfat" in blkid and "LABEL=ESP" in blkid
    assert "UUID=7B77-95E7" in blkid
    # the tree's /boot/efi went onto the FAT file system (org.osbuild.fat through mtools), not into ext4
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    efi = subprocess.run([need_tool("mtype"), "-i", str(esp), "::/EFI/BOOT/BOOTX64.EFI"], capture_output=True,
                         env=env, check=True).stdout
    assert efi == b"not really an EFI binary\n"
    ls = subprocess.run(["debugfs", "-R", "ls -l /boot/efi", str(root)], capture_output=True, text=True, check=True)
    assert "EFI" not in ls.stdout


def test_qemu_formats(disk_build) -> None:
    out, res, _ = disk_build
    size = (out / "image/disk.img").stat().st_size
    q = qemu_info(out / "qcow2/disk.qcow2", "qcow2")
    assert q["format"] == "qcow2" and q["virtual-size"] == size
    assert q["format-specific"]["data"]["compat"] == "1.1"
    v = qemu_info(out / "vpc/disk.vhd", "vpc")
    assert v["format"] == "vpc" and v["virtual-size"] >= size
    k = qemu_info(out / "vmdk/disk.vmdk", "vmdk")
    assert k["format"] == "vmdk" and k["format-specific"]["data"]["create-type"] == "streamOptimized"
    # the converted image has the same content as the raw one
    cmp = subprocess.run([need_tool("qemu-img"), "compare", "-f", "raw", "-F", "qcow2",
                          str(out / "image/disk.img"), str(out / "qcow2/disk.qcow2")], capture_output=True)
    assert cmp.returncode == 0, cmp.stdout
    assert [s["type"] for s in res["log"]["image"]] == ["org.osbuild.truncate", "org.osbuild.sfdisk",
                                                       "org.osbuild.mkfs.fat", "org.osbuild.mkfs.ext4",
                                                       "org.osbuild.copy"]


@pytest.mark.parametrize("name,cmd", [("xz/disk.img.xz", "xz"), ("gzip/disk.img.gz", "gzip"),
                                      ("zstd/disk.img.zst", "zstd")])
def test_compressed_exports(disk_build, name: str, cmd: str) -> None:
    out, _, _ = disk_build
    data = subprocess.run([need_tool(cmd), "-dc", str(out / name)], capture_output=True, check=True).stdout
    assert data == (out / "image/disk.img").read_bytes()


def test_no_loop_devices_or_mounts_left(disk_build) -> None:
    _, _, tmp = disk_build
    assert str(tmp) not in subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert str(tmp) not in open("/proc/mounts").read()


def test_oci_archive_accepted_by_skopeo(tmp_path) -> None:
    skopeo = need_tool("skopeo")
    out = tmp_path / "out"
    proc, _ = engine("--store", str(tmp_path / "store"), "--output-directory", str(out), "--export", "container",
                     "--json", str(MANIFESTS / "oci.json"))
    assert proc.returncode == 0, proc.stderr.decode()
    archive = out / "container/container.tar"
    info = json.loads(subprocess.run([skopeo, "inspect", f"oci-archive:{archive}"], capture_output=True, text=True,
                                     check=True).stdout)
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Created"] == "2023-11-14T22:13:20Z"  # the pipeline's source-epoch
    assert len(info["Layers"]) == 1
    cfg = json.loads(subprocess.run([skopeo, "inspect", "--config", f"oci-archive:{archive}"], capture_output=True,
                                    text=True, check=True).stdout)
    assert cfg["config"]["Cmd"] == ["/bin/sh"]
