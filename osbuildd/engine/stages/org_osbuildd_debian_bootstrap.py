"""org.osbuildd.debian.bootstrap: install exactly the pinned .debs of the `packages` input.

The input files are named by checksum, so a flat apt repository is built from them in a scratch
directory and mmdebstrap (variant custom: nothing but --include) installs every package of it,
with no network: the tree gets exactly the depsolved set, unpacked and configured.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from typing import Any

from osbuildd.engine.stageapi import StageArgs, TreeRoot
from osbuildd.engine.stages._aptprogress import AptProgress, extracting_debs


def _control_names(repo: str) -> list[str]:
    """Package names of the flat repository (from the index apt will read)."""
    names = []
    with open(os.path.join(repo, "Packages"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("Package:"):
                names.append(line.split(":", 1)[1].strip())
    return sorted(set(names))


def _stanza(repo: str, name: str, src: str) -> str:
    """Link one .deb into the repository; its Packages stanza (what apt-ftparchive would index).

    The input file is named by its verified checksum (``sha256:<hex>``), so that is its SHA256."""
    algo, _, digest = name.partition(":")
    if algo != "sha256" or not digest:
        raise SystemExit(f"org.osbuildd.debian.bootstrap: input file {name} is not named sha256:<hex>")
    deb = name.replace(":", "_") + ".deb"
    dst = os.path.join(repo, deb)
    try:
        os.link(src, dst)
    except OSError:
        os.symlink(src, dst)
    control = subprocess.run(["dpkg-deb", "--field", src], check=True, capture_output=True, text=True).stdout
    control = control.rstrip("\n")
    if not control.startswith("Package:") and "\nPackage:" not in control:
        raise SystemExit(f"org.osbuildd.debian.bootstrap: {name} has no Package field")
    return f"{control}\nFilename: ./{deb}\nSize: {os.stat(src).st_size}\nSHA256: {digest}\n\n"


def _make_repo(args: StageArgs, repo: str, prog: AptProgress) -> list[str]:
    """The flat repository of the `packages` input, each .deb indexed as it arrives (the engine may
    still be downloading the rest); Packages and Release are written once the input is complete."""
    input_dir = args.inputs["packages"]["path"]
    stanzas: dict[str, concurrent.futures.Future[str]] = {}
    # dpkg-deb is a process per package: a few at once, while the next files arrive
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        for n in args.stream_input_files("packages"):
            if n.startswith("sha256:"):
                stanzas[n] = pool.submit(_stanza, repo, n, os.path.join(input_dir, n))
                if prog.arrived(len(stanzas)):
                    args.report_progress(*prog.report())
        if not stanzas:
            raise SystemExit("org.osbuildd.debian.bootstrap: the packages input holds no files")
        # in checksum order, whatever order the files came in: the same index for the same input
        text = "".join(stanzas[n].result() for n in sorted(stanzas))
    with open(os.path.join(repo, "Packages"), "w", encoding="utf-8") as out:
        out.write(text)
    with open(os.path.join(repo, "Release"), "w", encoding="utf-8") as out:
        subprocess.run(["apt-ftparchive", "release", "."], cwd=repo, stdout=out, check=True)
    return _control_names(repo)


def _weldr_fields(version: str) -> tuple[int, str, str]:
    """[epoch:]upstream[-revision] -> (epoch, upstream, revision or "0"), as osbuildd.depsolve.debversion
    splits it (stages import only the standard library and stageapi)."""
    epoch, _, rest = version.partition(":") if ":" in version else ("0", "", version)
    upstream, dash, revision = rest.rpartition("-")
    return int(epoch), (upstream if dash else rest), (revision if dash else "0")


def _installed(tree: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W",
         "-f", "${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n"],
        check=True, capture_output=True, text=True,
    ).stdout
    pkgs = []
    for line in sorted(out.splitlines()):
        name, version, arch, status = line.split("\t")
        if not status.startswith("ii"):
            raise SystemExit(f"package {name} is not fully installed (dpkg status {status.strip()})")
        # upstream's rpm-stage fields, read as the Weldr API reads them (Debian revision = release)
        epoch, upstream, release = _weldr_fields(version)
        pkgs.append({"name": name, "epoch": epoch, "version": upstream, "release": release, "arch": arch})
    return pkgs


QEMU_BINFMT = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}


def _check_arch(arch: str) -> None:
    """A foreign tree runs its maintainer scripts through qemu-user: refuse clearly without it."""
    host = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    if arch != host and not os.path.exists(f"/proc/sys/fs/binfmt_misc/{QEMU_BINFMT[arch]}"):
        raise SystemExit(f"cannot bootstrap an {arch} tree on this {host} host: it needs qemu-user-static "
                         f"with binfmt_misc ({QEMU_BINFMT[arch]}) registered")


def _run_with_progress(args: StageArgs, cmd: list[str], env: dict[str, str], prog: AptProgress) -> None:
    """mmdebstrap, its output to the stage log line by line and counted into step reports (on from
    where the local repository left ``prog``: the steps only grow)."""
    print("+ " + " ".join(cmd), flush=True)
    lock = threading.Lock()
    done = threading.Event()

    def report() -> None:
        args.report_progress(*prog.report())

    def watch_extraction() -> None:
        # the extraction phase prints nothing per package: count the archives seen being read
        seen: set[str] = set()
        while not done.wait(0.2):
            if prog.phase == "extracting":
                seen |= extracting_debs()
                with lock:
                    if prog.extracting_seen(len(seen)):
                        report()

    report()
    watcher = threading.Thread(target=watch_extraction, daemon=True)
    watcher.start()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            with lock:
                if prog.feed(raw.decode("utf-8", "replace")):
                    report()
        rc = proc.wait()
    finally:
        done.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watcher.join()
    if rc != 0:
        raise subprocess.CalledProcessError(rc, cmd)
    prog.finish()
    report()


def main(args: StageArgs) -> int:
    opts = args.options
    tree = args.tree
    _check_arch(opts["architecture"])
    # the first report before the local repository is built: its files may still be downloading
    count = sum(1 for n in args.inputs["packages"].get("data", {}).get("files", {}) if n.startswith("sha256:"))
    prog = AptProgress(count)
    args.report_progress(*prog.report())
    scratch = tempfile.mkdtemp(prefix="osbuildd-debrepo-")
    try:
        os.chmod(scratch, 0o755)  # apt reads it as _apt
        names = _make_repo(args, scratch, prog)
        print(f"local repository with {len(names)} packages", flush=True)
        # mmdebstrap mounts /proc, /sys, /dev in the tree: in a private mount namespace those
        # mounts vanish with the process, even when the build is killed
        cmd = [
            "unshare", "--mount", "--propagation", "private",
            "mmdebstrap", "--verbose", "--mode=root", "--variant=custom", "--format=directory",
            f"--architectures={opts['architecture']}",
            "--include=" + ",".join(names),
            "--aptopt=Acquire::Languages \"none\"",
            "--skip=check/empty",
        ]
        if opts.get("unsafe_io", True):
            cmd.append("--dpkgopt=force-unsafe-io")
        for glob in opts.get("dpkg_excludes", []):
            cmd.append(f"--dpkgopt=path-exclude={glob}")
        cmd += [opts["suite"], tree, f"deb [trusted=yes] copy://{scratch} ./"]
        # INITRD=No: the kernel's postinst hook skips the initramfs; org.osbuildd.debian.initramfs
        # builds it once, after fstab and the rest of the configuration exist
        env = dict(os.environ, INITRD="No", LC_ALL="C.UTF-8")
        if args.source_epoch is not None:
            env["SOURCE_DATE_EPOCH"] = str(args.source_epoch)
        _run_with_progress(args, cmd, env, prog)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # mmdebstrap leaves the build repository as the system's source and copies host files in
    root = TreeRoot(tree)  # the packages' tree: its symlinks resolve inside it
    root.unlink("/etc/apt/sources.list")
    # written anew (not in place): the copy mmdebstrap made keeps the host's file mode
    root.unlink("/etc/hostname")
    root.write_text("/etc/hostname", "localhost\n")
    pfd, name = root.parent("/etc/resolv.conf")
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    finally:
        os.close(pfd)
    if st is not None and not stat.S_ISLNK(st.st_mode):
        root.unlink("/etc/resolv.conf")
        root.write_text("/etc/resolv.conf", "")

    pkgs = _installed(tree)
    missing = sorted(set(names) - {p["name"] for p in pkgs})
    if missing:
        raise SystemExit(f"packages not installed: {', '.join(missing)}")
    args.write_metadata({"packages": pkgs})
    print(f"installed {len(pkgs)} packages", flush=True)
    return 0
