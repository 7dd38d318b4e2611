"""What Debian's indexes lack for ``projects/info``: a package's build time and license, read
from the ``.deb`` itself and cached per package version under ``<cache_dir>/debmeta/``.

- build time: the modification time dpkg-deb wrote into the ``.deb``'s ar header for
  ``control.tar.*``. Debian builds are reproducible, so dpkg-deb takes it from
  ``SOURCE_DATE_EPOCH``, the date of the upload's ``debian/changelog`` entry (tmux 3.3a-3:
  2022-10-31T16:55:13Z).
- license: the ``License:`` short names of ``/usr/share/doc/<pkg>/copyright`` (DEP-5); for a
  free-form file, the ``/usr/share/common-licenses/*`` it points at. A package whose doc
  directory is a symlink (``libfoo-dev`` -> ``libfoo1``) is read through the target package.

Downloads run as tasks that outlive a slow request (a request waits at most ``WAIT`` seconds,
then answers with what it has; the task finishes into the cache). Every download is checked
against the index's SHA256; parsing runs in a thread.
"""

from __future__ import annotations

import asyncio
import bz2
import functools
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, cast
from urllib.parse import quote, unquote, urlsplit

import aiohttp

from osbuildd.depsolve import PackageInfo
from osbuildd.errors import ErrorKind, ServiceError

if TYPE_CHECKING:
    from osbuildd.depsolve.apt import Location
    from osbuildd.distro import Distro, Repository

WAIT = 10.0              # seconds a request waits for downloads before answering without them
TASK_TIMEOUT = 180.0     # a download + parse that takes longer is given up (not cached)
MAX_DEB = 512 * 1024 * 1024
PARALLEL = 4             # downloads at a time (per event loop)
MAX_FETCH = 64           # packages one request may start downloading (a glob can match thousands)
CACHE_FORMAT = 1

_MEMO: dict[str, dict[str, str]] = {}
_TASKS: dict[tuple[int, str], asyncio.Task[dict[str, str] | None]] = {}   # by (event loop, cache key)
_SEMAPHORES: dict[int, asyncio.Semaphore] = {}


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class MetaError(ServiceError):
    """A .deb that could not be fetched or read (never reaches an API: the field stays empty)."""

    kind = ErrorKind.FAILED
    error_id = "PackageMetadataError"


# --------------------------------------------------------------------------- public

async def fill(distro: Distro, arch: str, repos: list[Repository], found: list[PackageInfo], cache_dir: Path,
               *, fetch: bool = True) -> list[PackageInfo]:
    """``found`` with ``build_time`` and ``license`` from the cache, fetching what is missing
    (when ``fetch``; at most ``MAX_FETCH`` packages) for at most ``WAIT`` seconds."""
    root = Path(cache_dir) / "debmeta"
    keys = {p.name: _key(root, p) for p in found if p.deb_version}
    have = {name: _MEMO[k] for name, k in keys.items() if k in _MEMO}
    if fetch and len(have) < len(keys):
        missing = [p for p in found if p.name in keys and p.name not in have]
        have.update(await asyncio.to_thread(_load_many, [keys[p.name] for p in missing], missing))
        missing = [p for p in missing if p.name not in have][:MAX_FETCH]
        if missing:
            have.update(await _fetch_all(distro, arch, repos, missing, keys, cache_dir))
    return [replace(p, build_time=p.build_time or have[p.name].get("build_time", ""),
                    license=p.license or have[p.name].get("license", ""))
            if p.name in have else p for p in found]


# --------------------------------------------------------------------------- cache

def _key(root: Path, p: PackageInfo) -> str:
    return str(root / f"{p.name}_{quote(p.deb_version, safe='+~.-')}_{p.arch}.json")


def _load_many(paths: list[str], pkgs: list[PackageInfo]) -> dict[str, dict[str, str]]:
    out = {}
    for path, p in zip(paths, pkgs, strict=True):
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("format") == CACHE_FORMAT:
            _MEMO[path] = {"build_time": str(data.get("build_time", "")), "license": str(data.get("license", ""))}
            out[p.name] = _MEMO[path]
    return out


def _store(path: str, meta: dict[str, str]) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": CACHE_FORMAT, **meta}))
    os.replace(tmp, target)


# --------------------------------------------------------------------------- fetching

async def _fetch_all(distro: Distro, arch: str, repos: list[Repository], missing: list[PackageInfo],
                     keys: dict[str, str], cache_dir: Path) -> dict[str, dict[str, str]]:
    from osbuildd.depsolve import apt

    _, locs = await apt.index(distro, arch, repos, cache_dir)
    tasks: dict[str, asyncio.Task[dict[str, str] | None]] = {}
    loop_id = id(asyncio.get_running_loop())
    for p in missing:
        key = keys[p.name]
        task = _TASKS.get((loop_id, key))
        if task is None and p.name in locs:
            task = asyncio.create_task(_fetch_one(p, locs, key, Path(cache_dir) / "debmeta"))
            _TASKS[(loop_id, key)] = task
            task.add_done_callback(functools.partial(_forget, (loop_id, key)))
        if task is not None:
            tasks[p.name] = task
    if tasks:
        await asyncio.wait(tasks.values(), timeout=WAIT)
    out: dict[str, dict[str, str]] = {}
    for name, task in tasks.items():
        if task.done() and not task.cancelled() and task.exception() is None:
            meta = task.result()
            if meta is not None:
                out[name] = meta
    return out


def _forget(key: tuple[int, str], _task: object) -> None:
    _TASKS.pop(key, None)


async def _fetch_one(p: PackageInfo, locs: dict[str, Location], key: str, root: Path) -> dict[str, str] | None:
    loop_id = id(asyncio.get_running_loop())
    sem = _SEMAPHORES.setdefault(loop_id, asyncio.Semaphore(PARALLEL))
    try:
        async with sem, asyncio.timeout(TASK_TIMEOUT):
            meta = await _read_package(p.name, locs, root)
    except (MetaError, OSError, aiohttp.ClientError, TimeoutError):
        return None   # not cached: the next request tries again
    await asyncio.to_thread(_store, key, meta)
    _MEMO[key] = meta
    return meta


async def _read_package(name: str, locs: dict[str, Location], root: Path) -> dict[str, str]:
    tmp_dir = root / "tmp"
    await asyncio.to_thread(_tidy, tmp_dir)
    deb = await _download(locs[name], tmp_dir)
    try:
        build_time, license_, doc_link = await asyncio.to_thread(_inspect, deb, name)
    finally:
        await asyncio.to_thread(deb.unlink, missing_ok=True)
    if not license_ and doc_link and doc_link in locs and doc_link != name:
        other = await _download(locs[doc_link], tmp_dir)
        try:
            _, license_, _ = await asyncio.to_thread(_inspect, other, doc_link)
        finally:
            await asyncio.to_thread(other.unlink, missing_ok=True)
    return {"build_time": build_time, "license": license_}


def _tidy(tmp_dir: Path) -> None:
    """The temporary directory, without downloads a stopped daemon left behind."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    stale = time.time() - 2 * TASK_TIMEOUT
    for f in tmp_dir.glob("*.deb"):
        try:
            if f.stat().st_mtime < stale:
                f.unlink()
        except OSError:
            pass


async def _download(loc: Location, tmp_dir: Path) -> Path:
    """The .deb at ``loc`` in a temporary file, its SHA256 checked against the index."""
    if loc.size > MAX_DEB:
        raise MetaError(f"{loc.url}: {loc.size} bytes is more than this reads")
    fd, name = await asyncio.to_thread(tempfile.mkstemp, suffix=".deb", dir=tmp_dir)
    path = Path(name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            if loc.url.startswith("file:"):
                await asyncio.to_thread(_copy_local, unquote(urlsplit(loc.url).path), out, digest)
            else:
                await _copy_http(loc.url, out, digest)
        if digest.hexdigest() != loc.sha256:
            raise MetaError(f"{loc.url}: checksum does not match the index")
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return path


async def _copy_http(url: str, out: IO[bytes], digest: _Digest) -> None:
    timeout = aiohttp.ClientTimeout(total=TASK_TIMEOUT, sock_read=30)
    buf = bytearray()
    total = 0
    async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session, session.get(url) as r:
        if r.status != 200:
            raise MetaError(f"{url}: HTTP {r.status}")
        async for chunk in r.content.iter_chunked(1 << 16):
            total += len(chunk)
            if total > MAX_DEB:
                raise MetaError(f"{url}: larger than {MAX_DEB} bytes")
            digest.update(chunk)
            buf += chunk
            if len(buf) >= 1 << 20:   # file writes off the loop, a MiB at a time
                await asyncio.to_thread(out.write, bytes(buf))
                buf.clear()
    await asyncio.to_thread(out.write, bytes(buf))


def _copy_local(path: str, out: IO[bytes], digest: _Digest) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)


# --------------------------------------------------------------------------- reading a .deb

def _ar_members(f: IO[bytes]) -> list[tuple[str, int, int, int]]:
    """(name, mtime, offset, size) of each member of an ar archive."""
    if f.read(8) != b"!<arch>\n":
        raise MetaError("not a .deb (no ar header)")
    out: list[tuple[str, int, int, int]] = []
    while True:
        head = f.read(60)
        if len(head) < 60:
            return out
        name = head[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            mtime, size = int(head[16:28].strip() or 0), int(head[48:58].strip())
        except ValueError:
            raise MetaError("broken ar member header") from None
        out.append((name, mtime, f.tell(), size))
        f.seek(size + (size & 1), os.SEEK_CUR)


def _inspect(deb: Path, name: str) -> tuple[str, str, str]:
    """(build time, license, doc-dir symlink target package or "") of ``deb``."""
    with open(deb, "rb") as f:
        members = _ar_members(f)
        control = next((m for m in members if m[0].startswith("control.tar")), None)
        data = next((m for m in members if m[0].startswith("data.tar")), None)
        build_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(control[1])) if control and control[1] else ""
        if data is None:
            return build_time, "", ""
        text, link = _doc_copyright(f, data, name)
    return build_time, (license_of(text, name) if text is not None else ""), link


def _doc_copyright(f: IO[bytes], member: tuple[str, int, int, int], name: str) -> tuple[str | None, str]:
    """The text of ``usr/share/doc/<name>/copyright`` in the data member, or (None, <the package
    the doc dir links to>)."""
    mname, _, offset, size = member
    f.seek(offset)
    raw = _Bounded(f, size)
    doc = f"usr/share/doc/{name}"
    proc = None
    if mname.endswith(".zst"):
        if not shutil.which("zstd"):
            return None, ""
        proc = subprocess.Popen(["zstd", "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        stream = cast("IO[bytes]", _ZstdPipe(proc, raw))   # tarfile only reads it
    else:
        stream = _decompressed(raw, Path(mname).suffix)
    link = ""
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for entry in tar:
                path = entry.name.removeprefix("./").rstrip("/")
                if path == doc and entry.issym():
                    link = os.path.basename(entry.linkname.rstrip("/"))
                elif path == f"{doc}/copyright" and entry.isfile():
                    fh = tar.extractfile(entry)
                    return (fh.read(1 << 20).decode("utf-8", "replace") if fh else None), link
    except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as e:
        raise MetaError(f"cannot read {mname}: {e}") from None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
    return None, link


def _decompressed(raw: _Bounded, suffix: str) -> IO[bytes]:
    """The member's bytes through the decompressor its suffix names (as they are for a plain .tar).
    The casts: the decompressors and tarfile only call ``read`` on these file-likes."""
    f = cast("IO[bytes]", raw)
    if suffix == ".xz":
        return cast("IO[bytes]", lzma.open(f))
    if suffix == ".gz":
        return cast("IO[bytes]", gzip.open(f))
    if suffix == ".bz2":
        return cast("IO[bytes]", bz2.open(f))
    return f


class _Bounded:
    """A read-only view of ``size`` bytes of ``f`` from its current position."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data


class _ZstdPipe:
    """zstd -dc fed from a thread, read as a stream (Python has no zstd module before 3.14)."""

    def __init__(self, proc: subprocess.Popen[bytes], raw: _Bounded) -> None:
        import threading

        self.proc = proc

        def feed() -> None:
            try:
                while chunk := raw.read(1 << 16):
                    assert proc.stdin is not None
                    proc.stdin.write(chunk)
            except (BrokenPipeError, OSError):
                pass
            finally:
                if proc.stdin is not None:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass

        # only this thread reads the .deb; tar reads zstd's output
        self.thread = threading.Thread(target=feed, daemon=True)
        self.thread.start()

    def read(self, n: int = -1) -> bytes:
        assert self.proc.stdout is not None
        return self.proc.stdout.read(n)


# --------------------------------------------------------------------------- copyright files

_COMMON = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9][A-Za-z0-9.+_-]*[A-Za-z0-9+])")


def license_of(text: str, name: str = "") -> str:
    """The license names a ``debian/copyright`` file gives, joined with `` and ``: the
    ``License:`` of each ``Files:`` paragraph (DEP-5), or the common licenses a free-form file
    points at; a free-form file that names none is pointed at."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip()]
    if paragraphs and re.search(r"^Format:.*(copyright-format|dep-?5)", paragraphs[0], re.I | re.M):
        names = _dep5_licenses(paragraphs)
        if names:   # "a or b" kept together: "(a or b) and c"
            return " and ".join(f"({n})" if " or " in n and len(names) > 1 else n for n in names)
    common = list(dict.fromkeys(_COMMON.findall(text)))
    if common:
        return " and ".join(common)
    return f"see /usr/share/doc/{name}/copyright" if name else ""


def _dep5_licenses(paragraphs: list[str]) -> list[str]:
    files: list[str] = []
    standalone: list[str] = []
    for para in paragraphs:
        fields = _fields(para)
        lic = fields.get("license", "").strip()
        if not lic:
            continue
        (files if "files" in fields or para is paragraphs[0] else standalone).append(lic)
    return list(dict.fromkeys(files or standalone))


def _fields(para: str) -> dict[str, str]:
    """The first line of each field of a deb822 paragraph, by lower-case name."""
    out = {}
    for line in para.splitlines():
        m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s*(.*)$", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out
