"""The cloud Debian image types (ami, vhd, gce) built from generated manifests with every customization."""

from __future__ import annotations

import subprocess
import tarfile

import pytest

from .util import mounted_partition, partitions, qemu_img_info

pytestmark = pytest.mark.build

BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


def test_ami_raw_disk(cloud_builds) -> None:
    raw = cloud_builds["ami"].outdir / "image" / "image.raw"
    assert [p["type"] for p in partitions(raw)] == [BIOS_BOOT, ESP, LINUX]
    with mounted_partition(raw, 2) as root:
        grub = (root / "boot/grub/grub.cfg").read_text()
        assert "nvme_core.io_timeout=4294967295" in grub and "h3.marker=1" in grub
        assert list((root / "boot").glob("vmlinuz-*-cloud-amd64"))
        assert (root / "usr/bin/cloud-init").exists()
        assert (root / "etc/hostname").read_text().strip() == "h3-host"


def test_ami_and_vhd_share_the_bootstrap(cloud_builds) -> None:
    ami, vhd = cloud_builds["ami"], cloud_builds["vhd"]
    assert ami.manifest["pipelines"][0]["stages"][0] == vhd.manifest["pipelines"][0]["stages"][0]
    # the vhd build found the tree checkpointed by the ami build: its bootstrap never runs again
    # (on a store kept from an earlier run the whole os pipeline may come from its checkpoint)
    ran = [s["type"] for s in vhd.result["log"].get("os", [])]
    assert "org.osbuildd.debian.bootstrap" not in ran
    if ran:
        assert "org.osbuildd.grub.config" in ran


def test_vhd_fixed(cloud_builds) -> None:
    vhd = cloud_builds["vhd"].outdir / "vpc" / "disk.vhd"
    info = qemu_img_info(vhd, "vpc")
    assert info["format"] == "vpc" and info["virtual-size"] >= 3 << 30
    with open(vhd, "rb") as f:
        f.seek(-512, 2)
        assert f.read(8) == b"conectix"


def test_gce_tarball_uefi_only(cloud_builds, tmp_path) -> None:
    archive = cloud_builds["gce"].outdir / "archive" / "image.tar.gz"
    with tarfile.open(archive) as tf:
        assert tf.getnames() == ["disk.raw"]
    subprocess.run(["tar", "-xzf", str(archive), "-C", str(tmp_path)], check=True)
    raw = tmp_path / "disk.raw"
    assert [p["type"] for p in partitions(raw)] == [ESP, LINUX]
    with open(raw, "rb") as f:
        assert f.read(440).strip(b"\0") == b""  # no BIOS boot code: UEFI only
    with mounted_partition(raw, 1) as root:
        assert "console=ttyS0,38400n8d" in (root / "boot/grub/grub.cfg").read_text()
        assert (root / "boot/grub/x86_64-efi").is_dir() and not (root / "boot/grub/i386-pc").exists()


def test_raw_without_cloud_init_gets_networkd(cloud_builds) -> None:
    raw = cloud_builds["raw"].outdir / "image" / "disk.raw"
    assert [p["type"] for p in partitions(raw)] == [BIOS_BOOT, ESP, LINUX]
    with mounted_partition(raw, 2) as root:
        assert not (root / "usr/bin/cloud-init").exists()
        assert "DHCP=yes" in (root / "etc/systemd/network/80-dhcp.network").read_text()
        wants = root / "etc/systemd/system/multi-user.target.wants"
        assert (wants / "systemd-networkd.service").is_symlink()


def test_vmdk_stream_optimized(cloud_builds) -> None:
    info = qemu_img_info(cloud_builds["vmdk"].outdir / "vmdk" / "disk.vmdk")
    assert info["format"] == "vmdk"
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    names = {p.name for p in cloud_builds["vmdk"].packages}
    assert "open-vm-tools" in names
