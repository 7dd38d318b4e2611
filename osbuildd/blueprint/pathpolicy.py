"""Upstream's path policy (osbuild/images pkg/pathpolicy + pkg/policies) and the blueprint checks
built on it (pkg/blueprint fsnode/disk checks): which paths files, directories, user homes and
mountpoints may name.

A policy maps paths to (deny, exact); a path takes the entry of its longest matching prefix (by whole
components). The error texts are upstream's, including its quirks (the space in ``'%s '``, Go's
``%+q`` list quoting). Beyond upstream, NUL bytes and over-long paths are refused: upstream would
accept them here and fail later in the build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from osbuildd.blueprint.errors import BlueprintError
from osbuildd.errors import ErrorKind, ServiceError

PATH_MAX = 4095      # bytes, without the terminating NUL (Linux PATH_MAX is 4096 with it)
NAME_MAX = 255       # bytes per path component


@dataclass(frozen=True)
class PathPolicy:
    deny: bool = False    # the path and everything below it is refused
    exact: bool = False   # only the path itself is allowed, nothing below it


class PathPolicyError(ServiceError, ValueError):
    """A path the policy refuses; ``str()`` is upstream's text."""

    kind = ErrorKind.INVALID
    error_id = "BlueprintsError"


def go_clean(p: str) -> str:
    """Go's path.Clean for the paths we see (absolute or relative, '/'-separated)."""
    if p == "":
        return "."
    rooted = p.startswith("/")
    out: list[str] = []
    for part in p.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    joined = "/".join(out)
    if rooted:
        return "/" + joined
    return joined or "."


class PathPolicies:
    def __init__(self, entries: Mapping[str, PathPolicy]) -> None:
        self._entries = {tuple(_components(k)): v for k, v in entries.items()}

    def check(self, path: str) -> None:
        """Raise PathPolicyError with upstream's text when ``path`` is not allowed."""
        if path == "" or path[0] != "/":
            raise PathPolicyError("path must be absolute")
        if path != go_clean(path):
            raise PathPolicyError("path must be canonical")
        parts = tuple(_components(path))
        for n in range(len(parts), -1, -1):
            policy = self._entries.get(parts[:n])
            if policy is not None:
                if policy.deny or (policy.exact and n < len(parts)):
                    raise PathPolicyError(f"path '{path} ' is not allowed")
                return
        # no entry at all, not even "/": upstream's trie root has an empty (allowing) payload

    def allows(self, path: str) -> bool:
        try:
            self.check(path)
        except PathPolicyError:
            return False
        return True


def _components(path: str) -> list[str]:
    s = path.strip("/")
    return s.split("/") if s else []


_DENY = PathPolicy(deny=True)
_ALLOW = PathPolicy()

_MOUNTPOINTS = {
    "/": _ALLOW,
    "/etc": _DENY,                  # must be on the root filesystem
    "/usr": PathPolicy(exact=True),  # systemd's fstab generator cannot mount below /usr before switch-root
    "/sys": _DENY, "/proc": _DENY, "/dev": _DENY, "/run": _DENY,   # API filesystems
    "/bin": _DENY, "/sbin": _DENY, "/lib": _DENY, "/lib64": _DENY,  # merged /usr
    "/lost+found": _DENY, "/sysroot": _DENY,
    "/var/run": _DENY, "/var/lock": _DENY,                         # symlinks into /run (tmpfs)
}
# pkg/policies MountpointPoliciesDisk and MountpointPoliciesFS: an ESP can be a disk partition, but
# not a filesystem customization
MOUNTPOINT_POLICIES_DISK = PathPolicies(_MOUNTPOINTS)
MOUNTPOINT_POLICIES = PathPolicies({**_MOUNTPOINTS, "/boot/efi": _DENY})

_COMMON = {"/": _ALLOW, "/usr/local": _ALLOW, **{p: _DENY for p in (
    "/bin", "/boot", "/dev", "/efi", "/lib", "/lib64", "/lost+found", "/proc", "/run",
    "/sbin", "/sys", "/sysroot", "/tmp", "/usr", "/var/run", "/var/tmp")}}

# pkg/policies CustomDirectoriesPolicies
CUSTOM_DIRECTORIES_POLICIES = PathPolicies(_COMMON)

# pkg/policies CustomFilesPolicies: the directory list plus the account and mount tables
CUSTOM_FILES_POLICIES = PathPolicies({
    **_COMMON, "/etc/fstab": _DENY, "/etc/group": _DENY, "/etc/passwd": _DENY, "/etc/shadow": _DENY,
})


# ------------------------------------------------------------------------------ Go formatting

_GO_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t",
               "\v": r"\v", "\\": r"\\", '"': r"\""}


def go_quote_ascii(s: str) -> str:
    """strconv.QuoteToASCII (what ``%+q`` prints for each string)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0x20 <= o < 0x7F:
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def go_list_q(items: Iterable[str]) -> str:
    """Go's ``%+q`` of a []string: ``["/a" "/b"]``."""
    return "[" + " ".join(go_quote_ascii(i) for i in items) + "]"


def go_list_v(items: Iterable[str]) -> str:
    """Go's ``%v`` of a []string: ``[/a /b]``."""
    return "[" + " ".join(items) + "]"


# ------------------------------------------------------------------------------ our extra limits

def path_limit_error(path: str) -> str | None:
    """NUL bytes or lengths Linux cannot take; the text names the path (shortened when huge)."""
    if "\x00" in path:
        return f"path {go_quote_ascii(path[:200])} must not contain NUL bytes"
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > PATH_MAX:
        return f"path {go_quote_ascii(path[:64])}... is {size} bytes long, longer than the maximum of {PATH_MAX}"
    for part in path.split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            return (f"path {go_quote_ascii(path[:200])} has a component longer than the maximum of "
                    f"{NAME_MAX} bytes")
    return None


def _check_limits(field: str, paths: Iterable[tuple[int, str]], key: str = "path") -> None:
    for i, p in paths:
        msg = path_limit_error(p)
        if msg is not None:
            raise BlueprintError(f"{field}[{i}].{key}", msg)


# ------------------------------------------------------------------------------ blueprint checks

def check_mountpoints_policy(mountpoints: list[str], policy: PathPolicies = MOUNTPOINT_POLICIES) -> None:
    """customizations.filesystem (upstream's CheckMountpointsPolicy)."""
    _check_limits("customizations.filesystem", enumerate(mountpoints), "mountpoint")
    bad = [(i, m) for i, m in enumerate(mountpoints) if not policy.allows(m)]
    if bad:
        raise BlueprintError(f"customizations.filesystem[{bad[0][0]}].mountpoint",
                             f"The following custom mountpoints are not supported {go_list_q(m for _, m in bad)}")


def disk_mountpoints(disk: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, mountpoint) of every partition, logical volume and btrfs subvolume, as upstream collects them."""
    out = []
    for i, part in enumerate(disk.get("partitions") or []):
        where = f"customizations.disk.partitions[{i}]"
        if part.get("mountpoint"):
            out.append((f"{where}.mountpoint", part["mountpoint"]))
        for j, lv in enumerate(part.get("logical_volumes") or []):
            if lv.get("mountpoint"):
                out.append((f"{where}.logical_volumes[{j}].mountpoint", lv["mountpoint"]))
        for j, sv in enumerate(part.get("subvolumes") or []):
            out.append((f"{where}.subvolumes[{j}].mountpoint", sv.get("mountpoint") or ""))
    return out


def check_disk_mountpoints_policy(disk: Mapping[str, Any] | None,
                                  policy: PathPolicies = MOUNTPOINT_POLICIES_DISK) -> None:
    """customizations.disk (upstream's CheckDiskMountpointsPolicy). Upstream joins the errors with
    newlines; we join them with "; " so that the message stays one line."""
    if not disk:
        return
    errs: list[tuple[str, str]] = []
    for field, mp in disk_mountpoints(disk):
        msg = path_limit_error(mp)
        if msg is not None:
            raise BlueprintError(field, msg)
        try:
            policy.check(mp)
        except PathPolicyError as e:
            errs.append((field, str(e)))
    if errs:
        raise BlueprintError(errs[0][0], "The following errors occurred while setting up custom mountpoints: "
                             + "; ".join(m for _, m in errs))


def validate_dir_file_customizations(dirs: list[str], files: list[str]) -> None:
    """No duplicate paths, and no file is the parent of another node (upstream's
    ValidateDirFileCustomizations)."""
    kinds: dict[str, str] = {}
    dups = []
    for kind, paths in (("dir", dirs), ("file", files)):
        for p in paths:
            if p in kinds:
                dups.append(p)
            kinds[p] = kind
    if dups:
        raise BlueprintError("customizations.files",
                             f"duplicate files / directory customization paths: {go_list_v(dups)}")
    # deepest first, as upstream, so that each offending node is reported once
    ordered = sorted(dirs + files, key=lambda p: p.count("/"), reverse=True)
    checked: set[str] = set()
    invalid = []
    for p in ordered:
        if p in checked:
            continue
        parent = p
        while True:
            parent = go_clean(parent.rsplit("/", 1)[0] or "/")
            if parent == "/" or parent in checked:
                break
            if kinds.get(parent) == "file":
                invalid.append(p)
            checked.add(parent)
        checked.add(p)
    if invalid:
        raise BlueprintError("customizations.files", "the following filesystem nodes are parents of another "
                             f"node and are not directories: {go_list_v(invalid)}")


def check_directory_customizations_policy(dirs: list[str],
                                          policy: PathPolicies = CUSTOM_DIRECTORIES_POLICIES) -> None:
    _check_limits("customizations.directories", enumerate(dirs))
    bad = [(i, p) for i, p in enumerate(dirs) if not policy.allows(p)]
    if bad:
        raise BlueprintError(f"customizations.directories[{bad[0][0]}].path",
                             f"the following custom directories are not allowed: {go_list_q(p for _, p in bad)}")


def check_file_customizations_policy(files: list[str], policy: PathPolicies = CUSTOM_FILES_POLICIES) -> None:
    _check_limits("customizations.files", enumerate(files))
    bad = [(i, p) for i, p in enumerate(files) if not policy.allows(p)]
    if bad:
        raise BlueprintError(f"customizations.files[{bad[0][0]}].path",
                             f"the following custom files are not allowed: {go_list_q(p for _, p in bad)}")


def check_home_directories_policy(homes: list[tuple[int, str]],
                                  policy: PathPolicies = CUSTOM_DIRECTORIES_POLICIES) -> None:
    """Ours: upstream has no policy for ``user.home``; a home is a directory the image creates, so it
    gets the custom directories policy, with a message in the same style. A trailing slash is dropped
    first, as upstream's GetUsers does."""
    _check_limits("customizations.user", homes, "home")
    bad = []
    for i, home in homes:
        h = home.rstrip("/") if home != "/" else home
        if not policy.allows(h or "/"):
            bad.append((i, home))
    if bad:
        raise BlueprintError(f"customizations.user[{bad[0][0]}].home",
                             f"the following user home directories are not allowed: {go_list_q(h for _, h in bad)}")


def check_customizations(c: Mapping[str, Any]) -> None:
    """Every path-policy check, in upstream's order (checkOptions), on the customizations as a dict."""
    mps = [fs.get("mountpoint") for fs in c.get("filesystem") or []]
    if all(isinstance(m, str) for m in mps):
        check_mountpoints_policy(mps)
    check_disk_mountpoints_policy(c.get("disk"))
    dirs = [d.get("path") for d in c.get("directories") or []]
    files = [f.get("path") for f in c.get("files") or []]
    if all(isinstance(p, str) for p in dirs + files):
        _check_limits("customizations.directories", enumerate(dirs))
        _check_limits("customizations.files", enumerate(files))
        if all(p.startswith("/") for p in dirs + files):
            validate_dir_file_customizations(dirs, files)
        check_directory_customizations_policy(dirs)
        check_file_customizations_policy(files)
    homes = [(i, u.get("home")) for i, u in enumerate(c.get("user") or [])]
    check_home_directories_policy([(i, h) for i, h in homes if isinstance(h, str) and h != ""])
