"""Blueprint customizations -> osbuild stages, for both RPM (rpm.py) and Debian (debian.py) manifests.

Reads the blueprint in upstream's JSON shape (`Blueprint.to_dict()`, or a plain dict), so the keys are
upstream's (`customizations.user[0].key` ...). Each helper returns one stage dict (or None when the
blueprint does not ask for it) so that a generator can place it where upstream's pipeline has it;
`os_stages()` gives them all in upstream's order for generators that do not interleave.

Stage options follow upstream's stage schemas (`org.osbuild.*`); `org.osbuildd.*` only where the
Debian tree needs its own (apt sources, locale generation).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from osbuildd.blueprint import Blueprint, pathpolicy
from osbuildd.blueprint.errors import BlueprintError
from osbuildd.common import datasizes
from osbuildd.distro import Distro, ImageType, repocheck

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

Stage = dict[str, Any]
# What the generators take: a Blueprint (the compose service, the CLI), or its upstream JSON (the
# reference requests of the tests); None is an empty blueprint.
BlueprintInput = Blueprint | dict[str, Any] | None

# Mountpoints a filesystem customization may not create (system directories, pseudo file systems).
_PATH_RE = re.compile(r"^/(?!\.\.)((?!/\.\./).)*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}$")
# Blueprint top-level customization keys -> names used in ImageType.supported_customizations.
_KNOWN = {"hostname", "kernel", "sshkey", "user", "group", "timezone", "locale", "firewall", "services",
          "filesystem", "directories", "files", "repositories", "cacerts", "fips"}


def blueprint_dict(bp: BlueprintInput) -> dict[str, Any]:
    if bp is None:
        return {}
    if isinstance(bp, dict):
        return bp
    return bp.to_dict()


def customizations(bp: BlueprintInput) -> dict[str, Any]:
    """The blueprint's `customizations` table in upstream JSON shape ({} when absent)."""
    c: dict[str, Any] = blueprint_dict(bp).get("customizations") or {}
    return c


def stage(type_: str, options: dict[str, Any] | None = None, **extra: object) -> Stage:
    s: Stage = {"type": type_}
    s.update(extra)
    if options is not None:
        s["options"] = options
    return s


def parse_size(value: str | int, field_name: str) -> int:
    """minsize: int bytes or a string like "2 GiB" / "500MiB" (upstream's datasizes)."""
    try:
        return datasizes.parse(value)
    except ValueError as exc:
        raise BlueprintError(field_name, f"invalid size {value!r}: {exc}") from None


# --------------------------------------------------------------------------- inline file sources

@dataclass
class InlineFiles:
    """Collects org.osbuild.inline source items; identical content is stored once."""

    items: dict[str, dict[str, str]] = field(default_factory=dict)

    def add(self, data: bytes) -> str:
        checksum = "sha256:" + hashlib.sha256(data).hexdigest()
        self.items[checksum] = {"encoding": "base64", "data": base64.b64encode(data).decode()}
        return checksum

    def source(self) -> dict[str, Any] | None:
        return {"items": dict(sorted(self.items.items()))} if self.items else None


def copy_stage(files: list[tuple[str, str]]) -> Stage:
    """org.osbuild.copy of inline sources: files = [(checksum, absolute target path)]."""
    inputs: dict[str, Any] = {}
    paths = []
    for checksum, target in files:
        name = "file-" + checksum.split(":", 1)[1]
        inputs[name] = {"type": "org.osbuild.files", "origin": "org.osbuild.source",
                        "references": [{"id": checksum}]}
        paths.append({"from": f"input://{name}/{checksum}", "to": f"tree://{target}",
                      "remove_destination": True})
    return stage("org.osbuild.copy", {"paths": paths}, inputs=dict(sorted(inputs.items())))


# --------------------------------------------------------------------------- validation

def _check_path(path: object, field_name: str) -> str:
    if not isinstance(path, str) or not _PATH_RE.match(path) or path != "/" + "/".join(
            p for p in path.split("/") if p):
        raise BlueprintError(field_name, f"path {path!r} must be absolute and canonical")
    return path


def validate_for(distro: Distro, image_type: ImageType, bp: BlueprintInput) -> None:
    """Raise BlueprintError for a customization this distro/image type cannot honour."""
    c = customizations(bp)
    supported = image_type.supported_customizations
    for key, value in c.items():
        if value in (None, "", [], {}) or value is False:
            continue
        if key not in _KNOWN or key not in supported:
            raise BlueprintError(
                f"customizations.{key}",
                f"customization {key!r} is not supported by image type {image_type.name!r} of {distro.name}")
    if c.get("fips") and c.get("fips") is not True:
        raise BlueprintError("customizations.fips", "fips must be a boolean")
    for i, fs in enumerate(c.get("filesystem") or []):
        _check_path(fs.get("mountpoint"), f"customizations.filesystem[{i}].mountpoint")
        parse_size(fs.get("minsize", 0), f"customizations.filesystem[{i}].minsize")
    # upstream's path policy for mountpoints, files, directories (and ours for user homes)
    pathpolicy.check_customizations(c)
    for i, d in enumerate(c.get("directories") or []):
        _check_path(d.get("path"), f"customizations.directories[{i}].path")
        _check_mode(d.get("mode"), f"customizations.directories[{i}].mode")
    for i, f in enumerate(c.get("files") or []):
        _check_path(f.get("path"), f"customizations.files[{i}].path")
        _check_mode(f.get("mode"), f"customizations.files[{i}].mode")
        if f.get("uri"):
            raise BlueprintError(f"customizations.files[{i}].uri", "files with 'uri' are not supported")
    for i, r in enumerate(c.get("repositories") or []):
        try:   # no field may carry a second line or an apt option into the image's sources
            repocheck.check_image_repo(r, distro.family, f"customizations.repositories[{i}].")
        except repocheck.RepoCheckError as e:
            raise BlueprintError(e.field, str(e)) from None
        if not (r.get("baseurls") or r.get("metalink") or r.get("mirrorlist")):
            raise BlueprintError(f"customizations.repositories[{i}]",
                                 f"repository {r.get('id')!r}: baseurls, mirrorlist or metalink required")
        if distro.family == "debian":
            if not r.get("baseurls"):
                raise BlueprintError(f"customizations.repositories[{i}].baseurls",
                                     "Debian repositories need baseurls")
            for key in r.get("gpgkeys") or []:
                if not key.startswith("/"):
                    raise BlueprintError(f"customizations.repositories[{i}].gpgkeys",
                                         "Debian repositories take a keyring path (Signed-By)")
            _debian_repo_fields(i, r)
    for i, u in enumerate(c.get("user") or []):
        if not _NAME_RE.match(str(u.get("name", ""))):
            raise BlueprintError(f"customizations.user[{i}].name", f"invalid user name {u.get('name')!r}")
    for i, g in enumerate(c.get("group") or []):
        if not _NAME_RE.match(str(g.get("name", ""))):
            raise BlueprintError(f"customizations.group[{i}].name", f"invalid group name {g.get('name')!r}")
    _parse_pem_certs(c)
    for i, p in enumerate((c.get("firewall") or {}).get("ports") or []):
        if not re.fullmatch(r"[A-Za-z0-9-]+:(tcp|udp|sctp|dccp)", p):
            raise BlueprintError(f"customizations.firewall.ports[{i}]", f"invalid port {p!r}")


# yum/dnf repository options an apt source has no equivalent for: refused, not silently dropped.
# (gpgcheck=false would be apt's Trusted: yes, which we do not write into an image.)
_DEBIAN_REPO_REFUSED = {"priority": None, "repo_gpgcheck": None, "module_hotfixes": None, "sslverify": False,
                        "gpgcheck": False, "install_from": True}


def _debian_repo_fields(i: int, r: dict[str, Any]) -> None:
    where = f"customizations.repositories[{i}]"
    for key, refused in _DEBIAN_REPO_REFUSED.items():
        value = r.get(key)
        if value is not None and (refused is None or value == refused):
            raise BlueprintError(f"{where}.{key}",
                                 f"{where}.{key}: {key} = {json_value(value)} is not supported for Debian repositories")
    if len(r.get("gpgkeys") or []) > 1:
        raise BlueprintError(f"{where}.gpgkeys",
                             f"{where}.gpgkeys: Debian repositories take one keyring path (Signed-By)")


def json_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _check_mode(mode: object, field_name: str) -> None:
    if mode is not None and not re.fullmatch(r"0?[0-7]{3,4}", str(mode)):
        raise BlueprintError(field_name, f"invalid mode {mode!r}")


# --------------------------------------------------------------------------- single customizations

def kernel_append(c: dict[str, Any]) -> str:
    """Blueprint kernel.append, to add to the image type's kernel command line."""
    return ((c.get("kernel") or {}).get("append") or "").strip()


def kernel_options(base: str, c: dict[str, Any]) -> str:
    return " ".join(p for p in (base.strip(), kernel_append(c)) if p)


def hostname_stage(c: dict[str, Any], default: str | None = None) -> Stage | None:
    name = c.get("hostname") or default
    return stage("org.osbuild.hostname", {"hostname": name}) if name else None


def locale_stages(c: dict[str, Any], family: str, default_language: str, default_keymap: str = "",
                  default_x11_keymap: str = "") -> list[Stage]:
    loc = c.get("locale") or {}
    languages = loc.get("languages") or [default_language]
    out = []
    if family == "debian":
        opts: dict[str, Any] = {"language": languages[0]}
        if languages[1:]:
            opts["additional"] = languages[1:]
        out.append(stage("org.osbuildd.debian.locale", opts))
    else:
        out.append(stage("org.osbuild.locale", {"language": languages[0]}))
    if loc.get("keyboard"):
        out.append(stage("org.osbuild.keymap", {"keymap": loc["keyboard"]}))
    elif default_keymap:
        km: dict[str, Any] = {"keymap": default_keymap}
        if default_x11_keymap:
            km["x11-keymap"] = {"layouts": [default_x11_keymap]}
        out.append(stage("org.osbuild.keymap", km))
    return out


def timezone_stage(c: dict[str, Any], default: str | None = "UTC") -> Stage | None:
    zone = (c.get("timezone") or {}).get("timezone") or default
    return stage("org.osbuild.timezone", {"zone": zone}) if zone else None


def chrony_stage(c: dict[str, Any]) -> Stage | None:
    servers = (c.get("timezone") or {}).get("ntpservers") or []
    if not servers:
        return None
    return stage("org.osbuild.chrony", {"servers": [{"hostname": s} for s in servers]})


def groups_stage(c: dict[str, Any]) -> Stage | None:
    groups = {}
    for g in c.get("group") or []:
        groups[g["name"]] = {"gid": g["gid"]} if g.get("gid") is not None else {}
    return stage("org.osbuild.groups", {"groups": groups}) if groups else None


def _hashed(password: str, rng: random.Random) -> str:
    # Initialize() normally crypts blueprint passwords; crypt here only what is still plain text.
    if password.startswith(("$1$", "$2", "$5$", "$6$", "$y$", "$7$")):
        return password
    salt = "".join(rng.choice(string.ascii_letters + string.digits + "./") for _ in range(16))
    # passlib (libpass), as blueprint/validation.py: the crypt module is gone in Python 3.13
    from passlib.hash import sha512_crypt

    hashed: str = sha512_crypt.using(rounds=5000, salt=salt).hash(password)   # passlib has no types
    return hashed


def users_stage(c: dict[str, Any], rng: random.Random) -> Stage | None:
    users: dict[str, dict[str, Any]] = {}
    for key in c.get("sshkey") or []:   # the legacy sshkey customization: a key for an existing user
        users.setdefault(key["user"], {})["key"] = key["key"]
    for u in c.get("user") or []:
        entry = users.setdefault(u["name"], {})
        for src, dst in (("uid", "uid"), ("gid", "gid"), ("groups", "groups"), ("description", "description"),
                         ("home", "home"), ("shell", "shell"), ("key", "key"), ("expiredate", "expiredate"),
                         ("force_password_reset", "force_password_reset")):
            if u.get(src) not in (None, "", []):
                entry[dst] = u[src]
        if u.get("password"):
            entry["password"] = _hashed(u["password"], rng)
    return stage("org.osbuild.users", {"users": users}) if users else None


def firewall_stage(c: dict[str, Any]) -> Stage | None:
    fw = c.get("firewall") or {}
    opts: dict[str, Any] = {}
    if fw.get("ports"):
        opts["ports"] = list(fw["ports"])
    services = fw.get("services") or {}
    if services.get("enabled"):
        opts["enabled_services"] = list(services["enabled"])
    if services.get("disabled"):
        opts["disabled_services"] = list(services["disabled"])
    zones = [z for z in fw.get("zones") or [] if z.get("name")]
    if zones:
        opts["zones"] = [{"name": z["name"], "sources": list(z.get("sources") or [])} for z in zones]
    return stage("org.osbuild.firewall", opts) if opts else None


def systemd_stage(c: dict[str, Any], enabled: list[str] | None = None, disabled: list[str] | None = None,
                  default_target: str = "") -> Stage | None:
    svc = c.get("services") or {}
    opts: dict[str, Any] = {}
    en = _unique(list(enabled or []) + list(svc.get("enabled") or []))
    dis = _unique(list(disabled or []) + list(svc.get("disabled") or []))
    masked = _unique(list(svc.get("masked") or []))
    if en:
        opts["enabled_services"] = en
    if dis:
        opts["disabled_services"] = dis
    if masked:
        opts["masked_services"] = masked
    if default_target:
        opts["default_target"] = default_target
    return stage("org.osbuild.systemd", opts) if opts else None


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def repositories_stages(c: dict[str, Any], family: str, codename: str, inline: InlineFiles) -> list[Stage]:
    """Blueprint repositories written into the image: yum.repos files (RPM) or deb822 sources (Debian)."""
    repos = c.get("repositories") or []
    if not repos:
        return []
    if family == "debian":
        sources = []
        for r in repos:
            base = f"{r.get('filename') or r['id']}".removesuffix(".sources").removesuffix(".repo")
            src: dict[str, Any] = {"filename": base + ".sources",
                                   "uris": list(r["baseurls"]), "suites": [codename], "components": ["main"]}
            if r.get("gpgkeys"):
                src["signed_by"] = r["gpgkeys"][0]
            if r.get("enabled") is False:
                src["enabled"] = False
            sources.append(src)
        return [stage("org.osbuildd.apt.sources", {"sources": sources})]
    by_file: dict[str, list[dict[str, Any]]] = {}
    key_files: list[tuple[str, str]] = []
    for r in repos:
        repo: dict[str, Any] = {"id": r["id"]}
        if r.get("baseurls"):
            repo["baseurl"] = list(r["baseurls"])
        for k in ("metalink", "mirrorlist", "name", "priority", "enabled", "gpgcheck", "repo_gpgcheck",
                  "sslverify", "module_hotfixes"):
            if r.get(k) is not None and r.get(k) != "":
                repo[k] = r[k]
        keys = []
        for n, key in enumerate(r.get("gpgkeys") or []):
            if key.lstrip().startswith("-----BEGIN PGP"):
                # key text: ship it as a file and point the repo at it (as upstream does)
                path = f"/etc/pki/rpm-gpg/RPM-GPG-KEY-{r['id']}-{n}"
                key_files.append((inline.add(key.encode()), path))
                keys.append("file://" + path)
            else:
                keys.append(key)
        if keys:
            repo["gpgkey"] = keys
        filename = r.get("filename") or f"{r['id']}.repo"
        by_file.setdefault(filename, []).append(repo)
    out = [stage("org.osbuild.yum.repos", {"filename": fn, "repos": rs}) for fn, rs in by_file.items()]
    if key_files:
        out.insert(0, stage("org.osbuild.mkdir", {"paths": [{"path": "/etc/pki/rpm-gpg", "parents": True,
                                                              "exist_ok": True}]}))
        out.insert(1, copy_stage(key_files))
    return out


def _owner(item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    if item.get("user") not in (None, ""):
        out["user"] = item["user"]
    if item.get("group") not in (None, ""):
        out["group"] = item["group"]
    return out


def directories_files_stages(c: dict[str, Any], inline: InlineFiles) -> list[Stage]:
    """Upstream's order: mkdir, chmod, chown for directories; then copy, chmod, chown for files."""
    out: list[Stage] = []
    dirs = c.get("directories") or []
    if dirs:
        paths = []
        for d in dirs:
            p: dict[str, Any] = {"path": d["path"]}
            if d.get("ensure_parents"):
                p["parents"] = True
            if not (d.get("mode") or _owner(d)):
                p["exist_ok"] = True
            paths.append(p)
        out.append(stage("org.osbuild.mkdir", {"paths": paths}))
        out += _attr_stages(dirs)
    files = c.get("files") or []
    if files:
        out.append(copy_stage([(inline.add((f.get("data") or "").encode()), f["path"]) for f in files]))
        out += _attr_stages(files)
    return out


def _attr_stages(items: list[dict[str, Any]]) -> list[Stage]:
    out = []
    modes = {i["path"]: {"mode": str(i["mode"])} for i in items if i.get("mode")}
    if modes:
        out.append(stage("org.osbuild.chmod", {"items": modes}))
    owners = {i["path"]: _owner(i) for i in items if _owner(i)}
    if owners:
        out.append(stage("org.osbuild.chown", {"items": owners}))
    return out


def _pem_certs(c: dict[str, Any]) -> list[str]:
    ca = c.get("cacerts") or {}
    certs = ca.get("pem_certs") if isinstance(ca, dict) else None
    if not isinstance(certs, list | None):
        raise BlueprintError("customizations.cacerts.pem_certs", "must be a list of PEM certificates")
    return list(certs or [])


def _parse_pem_certs(c: dict[str, Any]) -> list[list[Certificate]]:
    """Each pem_certs entry parsed into its X.509 certificates; BlueprintError naming the bad entry."""
    from cryptography import x509

    out = []
    for i, pem in enumerate(_pem_certs(c)):
        field_name = f"customizations.cacerts.pem_certs[{i}]"
        if not isinstance(pem, str):
            raise BlueprintError(field_name, "must be a PEM string")
        try:
            certs = x509.load_pem_x509_certificates(pem.encode())
        except ValueError as e:
            raise BlueprintError(field_name, f"invalid PEM certificate: {e}") from None
        if not certs:
            raise BlueprintError(field_name, "no certificates found in PEM data")
        out.append(certs)
    return out


def cacerts_stages(c: dict[str, Any], inline: InlineFiles, family: str = "rpm") -> list[Stage]:
    certs = _pem_certs(c)
    if not certs:
        return []
    if family == "debian":
        # update-ca-certificates wants one certificate per .crt: split bundles, name each by its digest
        from cryptography.hazmat.primitives.serialization import Encoding

        entries: dict[str, str] = {}
        for parsed in _parse_pem_certs(c):
            for cert in parsed:
                name = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()[:16]
                entries[name] = cert.public_bytes(Encoding.PEM).decode()
        return [stage("org.osbuildd.debian.cacerts",
                      {"certificates": [{"name": n, "pem": pem} for n, pem in entries.items()]})]
    files = []
    for pem in certs:
        digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
        files.append((inline.add(pem.encode()), f"/etc/pki/ca-trust/source/anchors/{digest}.pem"))
    return [stage("org.osbuild.mkdir", {"paths": [{"path": "/etc/pki/ca-trust/source/anchors", "parents": True,
                                                    "exist_ok": True}]}),
            copy_stage(files), stage("org.osbuild.pki.update-ca-trust", {})]


def extra_packages(c: dict[str, Any], family: str) -> list[str]:
    """Packages a customization needs in the image (upstream adds them to the os set likewise)."""
    pkgs = []
    if (c.get("timezone") or {}).get("ntpservers"):
        pkgs.append("chrony")
    if c.get("firewall"):
        pkgs.append("firewalld")
        if family == "debian":   # firewall-offline-cmd checks protocols against /etc/protocols ("INVALID_PROTOCOL: esp")
            pkgs.append("netbase")
    if (c.get("kernel") or {}).get("name") and family == "rpm":
        pkgs.append(c["kernel"]["name"])
    if c.get("fips") and family == "rpm":
        pkgs.append("dracut-fips")
    if _pem_certs(c) and family == "debian":
        pkgs.append("ca-certificates")   # update-ca-certificates (RPM trees have ca-certificates anyway)
    return pkgs


def filesystem_minsizes(c: dict[str, Any]) -> dict[str, int]:
    """mountpoint -> minimum size in bytes, from the filesystem customization."""
    out: dict[str, int] = {}
    for i, fs in enumerate(c.get("filesystem") or []):
        out[fs["mountpoint"]] = max(out.get(fs["mountpoint"], 0),
                                    parse_size(fs.get("minsize", 0), f"customizations.filesystem[{i}].minsize"))
    return out


def os_stages(c: dict[str, Any], *, family: str, codename: str = "", inline: InlineFiles, rng: random.Random,
              default_language: str = "C.UTF-8", default_hostname: str | None = None,
              default_timezone: str | None = "UTC", enabled_services: list[str] | None = None,
              disabled_services: list[str] | None = None, default_target: str = "") -> list[Stage]:
    """Every customization stage in upstream's os-pipeline order (for generators that don't interleave)."""
    out: list[Stage] = []
    out += locale_stages(c, family, default_language)
    for s in (hostname_stage(c, default_hostname), timezone_stage(c, default_timezone), chrony_stage(c),
              groups_stage(c), users_stage(c, rng), firewall_stage(c)):
        if s:
            out.append(s)
    out += repositories_stages(c, family, codename, inline)
    out += cacerts_stages(c, inline, family)
    out += directories_files_stages(c, inline)
    s = systemd_stage(c, enabled_services, disabled_services, default_target)
    if s:
        out.append(s)
    return out
