"""Debian manifests from the real apt solver (real mirror, shared depsolve cache) validate against
osbuild's schemas (upstream stages) and our engine's schemas (org.osbuildd.* stages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from osbuildd import depsolve, distro, manifest
from osbuildd.manifest import schema

from .helpers import DEBIAN_TYPES, SCHEMAS, all_customizations_raw, blueprint, supported_only


def _cloud_init_conflict(name: str, image_type: Any) -> bool:
    """trixie's cloud-init Conflicts: firewalld, so those types cannot take a firewall customization."""
    return name == "debian-13" and "cloud-init" in image_type.package_sets["os"]["include"]


def _debian_blueprint(image_type: Any, name: str = "debian-12") -> Any:
    raw = supported_only(all_customizations_raw(), image_type)
    if _cloud_init_conflict(name, image_type):
        raw["customizations"].pop("firewall")
    raw["packages"] = [{"name": "tmux", "version": "*"}]
    raw["groups"] = []
    raw.pop("containers", None)
    c = raw["customizations"]
    c.pop("filesystem", None)     # Debian disks: one root file system (see debian.py)
    c["repositories"] = [{"id": "extra", "baseurls": ["http://deb.debian.org/debian"],
                          "gpgkeys": ["/usr/share/keyrings/debian-archive-keyring.gpg"]}]
    c["locale"] = {"languages": ["en_GB.UTF-8"], "keyboard": "uk"}
    return blueprint(raw)


async def _generate(name: str, type_: str, bp: Any, cache: Path, seed: int = 0) -> manifest.ManifestResult:
    d = distro.get(name)
    it = d.arch("x86_64").image_type(type_)
    sets = manifest.package_sets(d, "x86_64", it, bp)
    dep = await depsolve.depsolve(d, "x86_64", sets, cache)
    return manifest.generate(d, "x86_64", it, bp, dep, seed)


@pytest.mark.parametrize("type_", DEBIAN_TYPES)
@pytest.mark.parametrize("name", ["debian-12", "debian-13"])
async def test_debian_manifest_validates(name: str, type_: str, shared_state_dir: Path) -> None:
    cache = shared_state_dir / "cache" / "depsolve"
    it = distro.get(name).arch("x86_64").image_type(type_)
    for bp in (blueprint(), _debian_blueprint(it, name)):
        res = await _generate(name, type_, bp, cache)
        assert schema.validate(res.manifest, SCHEMAS) == []
        assert res.filename == it.filename
        names = [p["name"] for p in res.manifest["pipelines"]]
        assert it.exports[0] in names
        # every package the solver pinned is fetched by checksum
        assert res.manifest["sources"]["org.osbuild.curl"]["items"]


async def test_debian_customizations_and_determinism(shared_state_dir: Path) -> None:
    cache = shared_state_dir / "cache" / "depsolve"
    it = distro.get("debian-12").arch("x86_64").image_type("qcow2")
    bp = _debian_blueprint(it)
    a = await _generate("debian-12", "qcow2", bp, cache, seed=3)
    b = await _generate("debian-12", "qcow2", bp, cache, seed=3)
    assert json.dumps(a.manifest) == json.dumps(b.manifest)
    types = [s["type"] for p in a.manifest["pipelines"] for s in p["stages"]]
    for t in ("org.osbuild.users", "org.osbuild.groups", "org.osbuild.hostname", "org.osbuild.timezone",
              "org.osbuild.chrony", "org.osbuild.firewall", "org.osbuild.systemd", "org.osbuild.copy",
              "org.osbuildd.debian.locale", "org.osbuild.keymap", "org.osbuildd.apt.sources"):
        assert t in types, t
    packages = {i["url"].rsplit("/", 1)[1].split("_")[0] for i in
                a.manifest["sources"]["org.osbuild.curl"]["items"].values()}
    assert {"tmux", "chrony", "firewalld"} <= packages      # blueprint + customization packages


async def test_firewalld_cloud_init_conflict_is_named(shared_state_dir: Path) -> None:
    it = distro.get("debian-13").arch("x86_64").image_type("qcow2")
    assert _cloud_init_conflict("debian-13", it)
    raw = {"name": "fw", "version": "0.0.1", "customizations": {"firewall": {"ports": ["22:tcp"]}}}
    with pytest.raises(depsolve.DepsolveError) as exc:
        await _generate("debian-13", "qcow2", blueprint(raw), shared_state_dir / "cache" / "depsolve")
    assert "firewalld" in str(exc.value) and "cloud-init" in str(exc.value)


def test_debian_rejects_what_it_cannot_honour() -> None:
    d = distro.get("debian-12")
    raw = {"name": "x", "version": "0.0.1", "customizations": {"fips": True}}
    from osbuildd.blueprint import BlueprintError
    with pytest.raises(BlueprintError) as exc:
        manifest.validate_for(d, d.arch("x86_64").image_type("qcow2"), blueprint(raw))
    assert exc.value.field == "customizations.fips"


def _cacerts_raw(*pems: str) -> dict[str, Any]:
    return {"name": "ca", "version": "0.0.1", "customizations": {"cacerts": {"pem_certs": list(pems)}}}


def _reference_pem() -> str:
    return all_customizations_raw()["customizations"]["cacerts"]["pem_certs"][0]


def test_debian_cacerts_stage_and_package() -> None:
    """Offline: the package set asks for ca-certificates, the os pipeline gets the cacerts stage (schema-valid)."""
    from cryptography import x509

    from .helpers import synthetic_depsolve

    d = distro.get("debian-12")
    it = d.arch("x86_64").image_type("qcow2")
    pem = _reference_pem()
    bp = blueprint(_cacerts_raw(pem + pem))      # one entry holding the same certificate twice
    sets = manifest.package_sets(d, "x86_64", it, bp)
    assert "ca-certificates" in sets["os"].include
    # every Debian type lists ca-certificates today; the customization asks for it on its own regardless
    from osbuildd.manifest import customizations as cz
    assert cz.extra_packages(_cacerts_raw(pem)["customizations"], "debian") == ["ca-certificates"]
    assert cz.extra_packages({}, "debian") == []
    res = manifest.generate(d, "x86_64", it, bp, synthetic_depsolve(sets), 0)
    assert schema.validate(res.manifest, SCHEMAS) == []
    os_stages = res.manifest["pipelines"][0]["stages"]
    types = [s["type"] for s in os_stages]
    assert types.count("org.osbuildd.debian.cacerts") == 1
    assert "org.osbuild.pki.update-ca-trust" not in types
    assert types.index("org.osbuildd.debian.cacerts") < types.index("org.osbuildd.debian.cleanup")
    certs = os_stages[types.index("org.osbuildd.debian.cacerts")]["options"]["certificates"]
    assert len(certs) == 1                       # duplicates collapse, one certificate per .crt
    [parsed] = x509.load_pem_x509_certificates(certs[0]["pem"].encode())
    assert parsed == x509.load_pem_x509_certificate(pem.encode())
    # a hand-edited stage that breaks the schema is caught
    bad = json.loads(json.dumps(res.manifest))
    bad["pipelines"][0]["stages"][types.index("org.osbuildd.debian.cacerts")]["options"]["certificates"][0]["name"] = "../x"
    assert schema.validate(bad, SCHEMAS) != []


@pytest.mark.parametrize("pem", ["-----BEGIN CERTIFICATE-----", "not a pem at all"])
def test_debian_cacerts_bad_pem_names_the_field(pem: str) -> None:
    from osbuildd.blueprint import BlueprintError

    d = distro.get("debian-12")
    raw = _cacerts_raw(_reference_pem(), pem)
    with pytest.raises(BlueprintError) as exc:
        manifest.validate_for(d, d.arch("x86_64").image_type("qcow2"), raw)
    assert exc.value.field == "customizations.cacerts.pem_certs[1]"
