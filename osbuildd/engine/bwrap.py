"""The sandbox every stage runs in: a bubblewrap (``bwrap``) command line, as upstream's buildroot.

Root of the sandbox:
- with a build pipeline, its tree (an overlay whose upper layer is scratch, so a stage's writes to
  the build root never reach the store object; ``buildroot.setup``);
- without one, an empty tmpfs with a **read-only** view of the host's ``/usr``, ``/etc``, ``/bin``,
  ``/lib*``, ``/sbin`` (symlinks copied as the host has them: merged /usr stays merged).

Both get a private ``/proc`` (new PID namespace: only the stage's processes), a minimal ``/dev``
(bwrap's ``--dev``: null, zero, full, random, urandom, tty, pts, shm) plus exactly the loop devices
the stage's ``devices``/``mounts`` opened, ``/sys`` read-only (as upstream: grub-install and sfdisk
read it), tmpfs ``/run``, ``/tmp``, ``/var/tmp``, and under ``/run/osbuild``: ``tree`` (rw),
``inputs/<name>`` (ro), ``mounts`` (rw), ``api`` (args.json, meta.json), ``lib/osbuildd`` (ro).
Nothing else of the host is mounted, so nothing else of it is writable.

Namespaces: pid, ipc, uts, cgroup and network (a stage gets network only when its ``.meta.json``
says ``"network": true``, an osbuildd extension: upstream never gives stages network, and none of
our stages asks for it - packages come from the engine's sources). ``--die-with-parent`` ties the
stage to the engine, ``--new-session`` keeps it off the engine's terminal.

bwrap run by root drops every capability unless told to keep it: ``CAPABILITIES`` is upstream's
default set, plus what a stage's ``.meta.json`` lists under ``"capabilities"`` (upstream's key).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

BASE = "/run/osbuild"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../osbuildd
STAGES_DIR = Path(__file__).resolve().parent / "stages"

# Upstream osbuild's default set. Why each is needed by our stages:
# CHOWN/FOWNER/FSETID/DAC_*: dpkg, tar, cp -a write files of any owner and mode into the tree;
# SETUID/SETGID/SETPCAP/SETFCAP: maintainer scripts drop privileges, dpkg sets file capabilities;
# MKNOD: device nodes in trees (mmdebstrap's /dev); SYS_CHROOT: mmdebstrap, chroot_run;
# SYS_ADMIN: mount (mmdebstrap's /proc, /sys in its chroot; initramfs), unshare, loop ioctls,
# mkfs/sfdisk on the loop devices; LINUX_IMMUTABLE, MAC_OVERRIDE, AUDIT_WRITE, IPC_LOCK,
# NET_BIND_SERVICE, SYS_NICE, SYS_RESOURCE: tools in maintainer scripts that use them.
# Not kept: SYS_MODULE, SYS_RAWIO, SYS_PTRACE, SYS_TIME, SYS_BOOT, NET_ADMIN, NET_RAW, KILL, ...
CAPABILITIES = frozenset({
    "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_IPC_LOCK", "CAP_LINUX_IMMUTABLE", "CAP_MAC_OVERRIDE", "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
    "CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
})
BINFMT = "/proc/sys/fs/binfmt_misc"
HOST_DIRS = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32")


class SandboxMissing(RuntimeError):
    pass


def require() -> str:
    """The bwrap binary; without it the engine refuses to run (no unsandboxed fallback)."""
    path = shutil.which("bwrap")
    if not path:
        raise SandboxMissing("bwrap (bubblewrap) is not installed: osbuildd-engine runs every stage in a "
                             "bubblewrap sandbox and will not run stages without it (apt-get install bubblewrap)")
    return path


@dataclass
class StageMeta:
    capabilities: frozenset[str] = frozenset()
    network: bool = False
    # inputs the stage reads with ``stream_input_files`` (osbuildd's "x-osbuildd-streaming-inputs"):
    # the engine may start it before their sources are all fetched
    streaming_inputs: frozenset[str] = frozenset()


def stage_meta(stage_type: str) -> StageMeta:
    try:
        data = json.loads((STAGES_DIR / f"{stage_type}.meta.json").read_text())
    except (OSError, ValueError):
        return StageMeta()
    return StageMeta(frozenset(data.get("capabilities", [])), data.get("network") is True,
                     frozenset(data.get("x-osbuildd-streaming-inputs", [])))


@dataclass
class Sandbox:
    """What one stage's sandbox holds; ``argv`` turns it into the bwrap command line."""

    root: Path | None  # the build root, or None for the read-only host view
    tree: Path
    api: Path
    mounts: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)  # /dev/loopN the stage may use
    meta: StageMeta = field(default_factory=StageMeta)

    def argv(self, bwrap: str = "bwrap") -> list[str]:
        a = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--hostname", "osbuildd"]
        if not self.meta.network:
            a.append("--unshare-net")
        for cap in sorted(CAPABILITIES | self.meta.capabilities):
            a += ["--cap-add", cap]
        if self.root is not None:
            a += ["--bind", str(self.root), "/"]
        else:
            a += _host_view()
        a += ["--proc", "/proc"]
        if os.path.ismount(BINFMT):  # bootstrap checks for a foreign architecture's qemu-user handler
            a += ["--ro-bind", BINFMT, BINFMT]
        a += ["--dev", "/dev", "--ro-bind", "/sys", "/sys",
              "--tmpfs", "/run", "--tmpfs", "/tmp", "--dir", "/var", "--tmpfs", "/var/tmp"]
        for dev in sorted(set(self.devices)):
            a += ["--dev-bind", dev, dev]
        a += ["--ro-bind", str(PACKAGE_DIR), f"{BASE}/lib/osbuildd",
              "--bind", str(self.tree), f"{BASE}/tree",
              "--bind", str(self.api), f"{BASE}/api",
              "--bind", str(self.mounts), f"{BASE}/mounts",
              "--dir", f"{BASE}/inputs"]
        for name, path in sorted(self.inputs.items()):
            a += ["--ro-bind", str(path), f"{BASE}/inputs/{name}"]
        a += ["--chdir", "/", "--"]
        return a


def _host_view() -> list[str]:
    a: list[str] = []
    for d in HOST_DIRS:
        p = Path("/") / d
        if p.is_symlink():
            a += ["--symlink", os.readlink(p), f"/{d}"]
        elif p.is_dir():
            a += ["--ro-bind", str(p), f"/{d}"]
    return a + ["--dir", "/root"]
