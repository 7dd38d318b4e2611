"""Generic customization stages on a real Debian 12 tree, run inside a Debian build root (chroot).

The base tree is made once per machine with mmdebstrap from the Debian mirror and kept in the shared
test cache; the engine gets it as a `file://` curl source and unpacks it for the build root and the OS.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from conftest import need_tool

from osbuildd.common.redact import REDACTED

from . import debian_tree
from .helpers import engine, result_json

pytestmark = [pytest.mark.build, pytest.mark.usefixtures("require_root")]


@pytest.fixture(scope="session")
def debian_base_tar(shared_state_dir) -> Path:
    cache = shared_state_dir / "cache" / "engine-tests"
    cache.mkdir(parents=True, exist_ok=True)
    tar = cache / "debian12-base.tar"
    if not tar.exists():
        tmp = tar.with_suffix(".tmp.tar")
        subprocess.run([need_tool("mmdebstrap"), "--variant=minbase", "--mode=root",
                        "--include=python3,systemd,tzdata,chrony,openssh-server,passwd",
                        "bookworm", str(tmp), "http://deb.debian.org/debian"], check=True, capture_output=True)
        os.replace(tmp, tar)
    return tar


@pytest.fixture(scope="session")
def customized(debian_base_tar, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("debtree")
    h = hashlib.sha256()
    with open(debian_base_tar, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    m = debian_tree.manifest("sha256:" + h.hexdigest(), debian_base_tar.as_uri())
    out = tmp / "out"
    proc, stream = engine("--store", str(tmp / "store"), "--output-directory", str(out), "--export", "os",
                          "--export", "archive", "--json", "--monitor=JSONSeqMonitor", "-",
                          stdin=json.dumps(m).encode(), monitor_fd=True)
    assert proc.returncode == 0, proc.stdout.decode()[-4000:] + proc.stderr.decode()[-2000:]
    return out / "os", out / "archive" / "os.tar.gz", result_json(proc), stream


def passwd(tree: Path, db: str, name: str) -> list[str]:
    for line in (tree / "etc" / db).read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    raise AssertionError(f"{name} not in /etc/{db}")


def test_stages_ran_in_the_build_root(customized) -> None:
    _, _, res, _ = customized
    outputs = {s["type"]: s["output"] for s in res["log"]["os"]}
    assert "/run/osbuild/tree/etc/hostname written." in outputs["org.osbuild.hostname"]
    assert "/run/osbuild/inputs/file/" in outputs["org.osbuild.untar"]


def test_users_groups_keys(customized) -> None:
    tree, _, res, stream = customized
    alice = passwd(tree, "passwd", "alice")
    assert alice[2] == "1500" and alice[6] == "/bin/bash"
    assert "alice" in passwd(tree, "group", "builders")[3].split(",")
    assert passwd(tree, "group", "builders")[2] == "2000"
    assert "alice" in passwd(tree, "group", "sudo")[3].split(",")
    assert passwd(tree, "shadow", "alice")[1] == debian_tree.PASSWORD_HASH
    assert passwd(tree, "passwd", "root")[6] == "/bin/sh"
    keys = tree / "home/alice/.ssh/authorized_keys"
    assert keys.read_text() == debian_tree.SSH_KEY + "\n"
    st = keys.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (1500, 0o600)
    # never in the logs: neither the result nor the monitor stream (whose records carry stage options)
    assert debian_tree.PASSWORD_HASH not in json.dumps(res)
    assert debian_tree.PASSWORD_HASH.encode() not in stream and f'"password": "{REDACTED}"'.encode() in stream


def test_system_settings(customized) -> None:
    tree, _, _, _ = customized
    assert (tree / "etc/hostname").read_text() == "deb-custom\n"
    assert os.readlink(tree / "etc/localtime") == "../usr/share/zoneinfo/Europe/Berlin"
    assert (tree / "etc/timezone").read_text() == "Europe/Berlin\n"
    assert (tree / "etc/default/locale").read_text() == "LANG=en_US.UTF-8\n"
    assert "KEYMAP=de" in (tree / "etc/vconsole.conf").read_text()
    assert (tree / "etc/fstab").read_text() == "UUID=0194fdc2-fa2f-4cc0-81d3-ff12045b73c8 / ext4 defaults 1 1\n"
    assert (tree / "etc/machine-id").read_text() == "uninitialized\n"
    chrony = (tree / "etc/chrony/chrony.conf").read_text().splitlines()
    assert "server time.example.org iburst" in chrony and not any(ln.startswith("pool ") for ln in chrony)
    sshd = (tree / "etc/ssh/sshd_config").read_text().splitlines()
    assert sshd.index("PasswordAuthentication no") < next(i for i, ln in enumerate(sshd) if ln.startswith("Include"))
    assert json.loads((tree / "etc/cloud/cloud.cfg.d/99-osbuildd.cfg").read_text()) == {"ssh_pwauth": False}
    assert "d /var/lib/osbuildd-demo 0755" in (tree / "usr/lib/tmpfiles.d/osbuildd.conf").read_text()
    data = (tree / "srv/data").stat()
    assert (data.st_uid, data.st_gid, data.st_mode & 0o7777) == (1500, 2000, 0o2750)


def test_services(customized) -> None:
    tree, _, _, _ = customized
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    assert (wants / "ssh.service").is_symlink() and (wants / "systemd-networkd.service").is_symlink()
    assert not (wants / "chrony.service").exists()
    assert os.readlink(tree / "etc/systemd/system/default.target").endswith("multi-user.target")
    assert "ExecStart=/bin/true" in (tree / "etc/systemd/system/demo.service").read_text()


def test_tar_of_the_tree(customized) -> None:
    _, archive, _, _ = customized
    with tarfile.open(archive) as tar:
        member = tar.getmember("./etc/hostname")
        assert tar.extractfile(member).read() == b"deb-custom\n"
        assert tar.getmember("./home/alice/.ssh/authorized_keys").uid == 1500


# --------------------------------------------------------------------------- org.osbuildd.debian.cacerts

def _test_ca_pem(common_name: str, ed25519_key: bool = False) -> str:
    """A throw-away self-signed CA, made fresh so the bundle can only contain it if the stage put it there."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import NameOID

    key: Any = ed25519.Ed25519PrivateKey.generate() if ed25519_key else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, None if ed25519_key else hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _fetch_debs(shared_state_dir: Path, names: set[str]) -> list[Path]:
    """The named packages of Debian 12 as the apt solver pins them, downloaded once and checked by sha256."""
    import asyncio
    import urllib.request

    from osbuildd import depsolve, distro

    d = distro.get("debian-12")
    req = depsolve.PackageSetRequest(include=["ca-certificates"], repositories=list(d.arch("x86_64").repositories))
    solved = asyncio.run(depsolve.depsolve(d, "x86_64", {"os": req}, shared_state_dir / "cache" / "depsolve"))
    debs_dir = shared_state_dir / "cache" / "engine-tests" / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for spec in solved["os"]:
        if spec.name not in names:
            continue
        path = debs_dir / spec.url.rsplit("/", 1)[1]
        want = spec.checksum.split(":", 1)[1]
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != want:
            data = urllib.request.urlopen(spec.url, timeout=120).read()
            assert hashlib.sha256(data).hexdigest() == want, spec.url
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        out.append(path)
    assert {p.name.split("_")[0] for p in out} == names
    return out


@pytest.fixture(scope="session")
def ca_tree_tar(debian_base_tar, shared_state_dir, tmp_path_factory) -> Path:
    """The shared base tree plus the ca-certificates package (installed by dpkg in the tree), as a tar."""
    tmp = tmp_path_factory.mktemp("catree")
    tree = tmp / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-xf", str(debian_base_tar), "-C", str(tree), "--numeric-owner"], check=True)
    debs = _fetch_debs(shared_state_dir, {"ca-certificates", "openssl", "libssl3"})
    inside = tree / "tmp/osbuildd-debs"
    inside.mkdir()
    for deb in debs:
        (inside / deb.name).write_bytes(deb.read_bytes())
    proc = subprocess.run(["chroot", str(tree), "dpkg", "-i", *[f"/tmp/osbuildd-debs/{d.name}" for d in debs]],
                          capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    subprocess.run(["rm", "-rf", "--one-file-system", str(inside)], check=True)
    tar = tmp / "ca-tree.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", str(tree), "--numeric-owner", "."], check=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(tree)], check=True)
    return tar


def _run_cacerts(tar: Path, options: dict, tmp: Path) -> tuple[subprocess.CompletedProcess[bytes], Path]:
    h = hashlib.sha256()
    with open(tar, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    checksum = "sha256:" + h.hexdigest()
    m = {"version": "2", "sources": {"org.osbuild.curl": {"items": {checksum: tar.as_uri()}}},
         "pipelines": [{"name": "os", "stages": [
             {"type": "org.osbuild.untar", "inputs": {"file": {"type": "org.osbuild.files",
                                                               "origin": "org.osbuild.source",
                                                               "references": [checksum]}}},
             {"type": "org.osbuildd.debian.cacerts", "options": options}]}]}
    out = tmp / "out"
    proc, _ = engine("--store", str(tmp / "store"), "--output-directory", str(out), "--export", "os", "--json",
                     "-", stdin=json.dumps(m).encode())
    return proc, out / "os"


def test_debian_cacerts_stage(ca_tree_tar, tmp_path) -> None:
    pems = {"osbuildd-test": _test_ca_pem("osbuildd cacerts stage test CA"),
            "osbuildd-test-ed": _test_ca_pem("osbuildd cacerts stage test CA (ed25519)", ed25519_key=True)}
    options = {"certificates": [{"name": n, "pem": p} for n, p in pems.items()]}
    proc, tree = _run_cacerts(ca_tree_tar, options, tmp_path)
    assert proc.returncode == 0, proc.stdout.decode()[-4000:] + proc.stderr.decode()[-2000:]
    bundle = "".join((tree / "etc/ssl/certs/ca-certificates.crt").read_text().splitlines())
    for name, pem in pems.items():
        assert (tree / f"usr/local/share/ca-certificates/{name}.crt").read_text() == pem
        assert "".join(pem.strip().splitlines()[1:-1]) in bundle
        # update-ca-certificates linked it among the trusted certificates too
        assert os.readlink(tree / f"etc/ssl/certs/{name}.pem") == f"/usr/local/share/ca-certificates/{name}.crt"


def test_debian_cacerts_stage_refuses_garbage(ca_tree_tar, tmp_path) -> None:
    proc, _ = _run_cacerts(ca_tree_tar, {"certificates": [{"name": "bad", "pem": "hello"}]}, tmp_path)
    assert proc.returncode != 0
    assert "options.certificates[0].pem" in proc.stdout.decode() + proc.stderr.decode()


def test_debian_cacerts_stage_needs_the_package(debian_base_tar, tmp_path) -> None:
    """The shared base tree has no ca-certificates: the stage says so instead of half-working."""
    pem = _test_ca_pem("osbuildd cacerts missing-package CA")
    proc, _ = _run_cacerts(debian_base_tar, {"certificates": [{"name": "x", "pem": pem}]}, tmp_path)
    assert proc.returncode != 0
    assert "'ca-certificates' package" in proc.stdout.decode()
