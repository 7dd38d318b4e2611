"""Debian images built by osbuildd-engine from the real mirror, inspected offline."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from .blueprints import BOB_GECOS, EXTRA_REPO, SSH_KEY, TEST_CA_PEM
from .util import engine_build, mounted_partition, partitions, qemu_img_info

pytestmark = pytest.mark.build


def _no_leftovers() -> None:
    """Our own offline inspection mounts and loop devices are gone (other builds may run beside us)."""
    assert "h3-mnt-" not in Path("/proc/mounts").read_text()
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    assert "/raw0/disk.raw" not in loops


def test_tar_rootfs(tar_build) -> None:
    tar = tar_build.outdir / "archive" / "debian-rootfs.tar"
    with tarfile.open(tar) as tf:
        names = set(tf.getnames())
        hostname = tf.extractfile("./etc/hostname").read().decode()
        status = tf.extractfile("./var/lib/dpkg/status").read().decode()
        sources = tf.extractfile("./etc/apt/sources.list.d/debian.sources").read().decode()
        machine_id = tf.extractfile("./etc/machine-id").read()
        srv = tf.getmember("./srv/h3")
    assert hostname == "h3-rootfs\n"
    assert "./etc/apt/sources.list" not in names  # the build's local repository is not left behind
    assert "Suites: bookworm bookworm-updates" in sources and "Signed-By: /usr/share/keyrings" in sources
    assert machine_id == b""
    assert srv.isdir() and srv.mode & 0o777 == 0o750
    installed = {stanza.split("\n", 1)[0].removeprefix("Package: ")
                 for stanza in status.strip().split("\n\n")}
    # exactly the depsolved packages: nothing more, nothing less
    assert installed == {p.name for p in tar_build.packages}
    meta = tar_build.result["metadata"]["os"]["org.osbuildd.debian.bootstrap"]["packages"]
    assert {(m["name"], m["version"]) for m in meta} == {(p.name, p.version) for p in tar_build.packages}
    _no_leftovers()


def test_tar_rebuild_reuses_checkpoint(tar_build, shared_state_dir: Path, tmp_path: Path) -> None:
    result = engine_build(tar_build.manifest, shared_state_dir / "store", tmp_path, ["archive"], ["os"])
    assert "os" not in result["log"]  # the checkpointed tree was reused: no os stage ran
    assert (tmp_path / "archive" / "debian-rootfs.tar").stat().st_size > 50_000_000


def test_trixie_rootfs(trixie_tar_build) -> None:
    with tarfile.open(trixie_tar_build.outdir / "archive" / "root.tar.xz") as tf:
        version = tf.extractfile("./etc/debian_version").read().decode()
        hostname = tf.extractfile("./etc/hostname").read().decode()
        passwd = tf.extractfile("./etc/passwd").read().decode()
        sources = tf.extractfile("./etc/apt/sources.list.d/debian.sources").read().decode()
    assert version.startswith("13") and hostname == "trixie-h3\n"
    assert any(ln.startswith("bob:") for ln in passwd.splitlines())
    assert "Suites: trixie" in sources


def test_container_oci_archive(container_build) -> None:
    archive = container_build.outdir / "container" / "container.tar"
    out = subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}"], check=True, capture_output=True).stdout
    info = json.loads(out)
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert len(info["Layers"]) == 1


def test_qcow2_vhd_vmdk_read_back(qcow2_build) -> None:
    qcow2 = qemu_img_info(qcow2_build.outdir / "qcow2" / "disk.qcow2")
    vhd = qemu_img_info(qcow2_build.outdir / "vpc" / "disk.vhd", "vpc")
    with open(qcow2_build.outdir / "vpc" / "disk.vhd", "rb") as f:
        f.seek(-512, 2)
        assert f.read(8) == b"conectix"  # the VHD footer
    vmdk = qemu_img_info(qcow2_build.outdir / "vmdk" / "disk.vmdk")
    assert qcow2["format"] == "qcow2" and vhd["format"] == "vpc" and vmdk["format"] == "vmdk"
    assert qcow2["virtual-size"] >= 3 << 30  # filesystem minsize 3 GiB
    assert vhd["virtual-size"] >= qcow2["virtual-size"] and vmdk["virtual-size"] == qcow2["virtual-size"]
    _no_leftovers()


@pytest.fixture(scope="module")
def raw_disk(qcow2_build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("raw") / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(qcow2_build.outdir / "qcow2" / "disk.qcow2"), str(raw)],
                   check=True)
    return raw


def test_partition_layout(raw_disk: Path) -> None:
    parts = partitions(raw_disk)
    assert [p["type"] for p in parts] == ["21686148-6449-6E6F-744E-656564454649",
                                          "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                                          "0FC63DAF-8483-4772-8E79-3D69D8477DE4"]
    with open(raw_disk, "rb") as f:
        mbr = f.read(512)
    assert mbr[510:512] == b"\x55\xaa" and int.from_bytes(mbr[0x5C:0x64], "little") == parts[0]["start"]
    esp = parts[1]["start"] * 512
    listing = subprocess.run(["mdir", "-i", f"{raw_disk}@@{esp}", "::/EFI/BOOT"], capture_output=True, text=True,
                             env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}).stdout
    assert "BOOTX64" in listing


def test_customizations_offline(raw_disk: Path, qcow2_build) -> None:
    with mounted_partition(raw_disk, 2) as root:
        assert (root / "etc/hostname").read_text().strip() == "h3-host"
        _users_in_tree(root)
        assert str((root / "etc/localtime").readlink()).endswith("zoneinfo/Europe/Berlin")
        assert "server ntp.h3.example.org" in (root / "etc/chrony/chrony.conf").read_text().splitlines()
        assert "LANG=en_US.UTF-8" in (root / "etc/default/locale").read_text()
        assert (root / "usr/lib/locale/locale-archive").exists()
        generated = (root / "etc/locale.gen").read_text().splitlines()
        assert "en_US.UTF-8 UTF-8" in generated and "de_DE.UTF-8 UTF-8" in generated
        assert 'XKBLAYOUT="de"' in (root / "etc/default/keyboard").read_text()
        assert "KEYMAP=de" in (root / "etc/vconsole.conf").read_text()
        _services_firewall_repos_in_tree(root)
        fstab = (root / "etc/fstab").read_text()
        assert " / ext4 " in fstab and " /boot/efi vfat " in fstab
        wants = root / "etc/systemd/system/multi-user.target.wants"
        assert (wants / "systemd-networkd.service").is_symlink()
        grub = (root / "boot/grub/grub.cfg").read_text()
        assert "h3.marker=1" in grub and "console=ttyS0,115200n8" in grub
        assert (root / "boot/grub/i386-pc/normal.mod").exists() and (root / "boot/grub/x86_64-efi/normal.mod").exists()
        assert list((root / "boot").glob("initrd.img-*"))
        assert (root / "etc/h3test/hello.txt").read_text() == "hello from h3\n"
        assert (root / "etc/h3test/hello.txt").stat().st_mode & 0o777 == 0o640
        assert (root / "etc/h3test").stat().st_mode & 0o777 == 0o750
        owned = (root / "srv/h3/owned").stat()
        assert (owned.st_uid, owned.st_gid, owned.st_mode & 0o777) == (1234, 2345, 0o770)
        note = (root / "srv/h3/owned/note.txt")
        ops_gid = int(_group(root)["ops"].split(":")[2])
        assert note.read_text() == "bob's\n" and (note.stat().st_uid, note.stat().st_gid) == (1235, ops_gid)
        assert (root / "etc/machine-id").read_bytes() == b""
        assert (root / "usr/bin/tmux").exists()
        ca_body = "".join(TEST_CA_PEM.strip().splitlines()[1:-1])
        assert ca_body in "".join((root / "etc/ssl/certs/ca-certificates.crt").read_text().splitlines())
    _no_leftovers()


def _group(root: Path) -> dict[str, str]:
    return {ln.split(":")[0]: ln for ln in (root / "etc/group").read_text().splitlines()}


def _users_in_tree(root: Path) -> None:
    """user (each description as the GECOS field, uid, gid, home, shell, groups, key, password,
    expiredate, force_password_reset), sshkey for an existing user, group with and without gid."""
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/passwd").read_text().splitlines()}
    assert passwd["alice"][2] == "1234" and passwd["alice"][4:] == ["Alice H3", "/home/alice", "/bin/bash"]
    assert passwd["bob"][2:6] == ["1235", "2345", BOB_GECOS, "/home/bob"]
    shadow = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/shadow").read_text().splitlines()}
    assert shadow["bob"][1].startswith("$6$") and "h3-not-a-secret" not in shadow["bob"][1]
    assert shadow["bob"][2] == "0" and shadow["bob"][7] == "40000"   # chage -d 0; useradd -e (days)
    assert (root / "home/bob").is_dir() and (root / "home/bob").stat().st_uid == 1235
    group = _group(root)
    assert group["devs"].startswith("devs:x:2345:") and "alice" in group["devs"].split(":")[3].split(",")
    assert "alice" in group["sudo"].split(":")[3].split(",")
    assert int(group["ops"].split(":")[2]) >= 1000
    assert SSH_KEY in (root / "home/alice/.ssh/authorized_keys").read_text()
    assert SSH_KEY in (root / "root/.ssh/authorized_keys").read_text()


def _services_firewall_repos_in_tree(root: Path) -> None:
    system = root / "etc/systemd/system"
    assert (system / "multi-user.target.wants/systemd-networkd.service").is_symlink()
    assert not list(system.glob("*.wants/e2scrub_reap.service"))
    assert str((system / "e2scrub_all.timer").readlink()) == "/dev/null"
    zones = "".join(p.read_text() for p in (root / "etc/firewalld/zones").glob("*.xml"))
    ports = [set(m.split()) for m in re.findall(r"<port ([^>]*?)/?>", zones)]
    assert {'port="2222"', 'protocol="tcp"'} in ports
    assert '<service name="http"/>' in zones and '<service name="dhcpv6-client"/>' not in zones
    sources = (root / f"etc/apt/sources.list.d/{EXTRA_REPO['id']}.sources").read_text()
    assert f"URIs: {EXTRA_REPO['baseurls'][0]}" in sources and "Enabled: no" in sources
    assert f"Signed-By: {EXTRA_REPO['gpgkeys'][0]}" in sources


@pytest.mark.boot
@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_qcow2_boots_to_login(qcow2_build, firmware: str, tmp_path: Path) -> None:
    from .util import boot_to_login

    serial = boot_to_login(qcow2_build.outdir / "qcow2" / "disk.qcow2", "qcow2", firmware, tmp_path / "serial.log")
    assert "h3-host login:" in serial
    assert "h3.marker=1" in serial or "Linux version" in serial
