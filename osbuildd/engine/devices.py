"""Devices: ``org.osbuild.loopback``, set up with the loop ioctls directly.

The loop device is configured with ``LO_FLAGS_AUTOCLEAR`` and the engine holds it open: if the engine
dies without cleaning up (SIGKILL), the kernel detaches it on the last close. No udev runs here, so
partitions are addressed by ``start``/``size`` (sectors) on their own loop device, not with ``-P``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
import time
from pathlib import Path
from typing import Any

LOOP_CLR_FD = 0x4C01
LOOP_SET_FD = 0x4C00
LOOP_SET_STATUS64 = 0x4C04
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_READ_ONLY = 1
LO_FLAGS_AUTOCLEAR = 4
LO_FLAGS_PARTSCAN = 8
LO_FLAGS_DIRECT_IO = 16
_INFO64 = "QQQQQIIII64s64s32s2Q"
DIRECT_IO = True


def _info64(offset: int, sizelimit: int, flags: int, name: str) -> bytes:
    return struct.pack(_INFO64, 0, 0, 0, offset, sizelimit, 0, 0, 0, flags,
                       name.encode()[:63], b"", b"", 0, 0)


class LoopDevice:
    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def attach(cls, filename: Path, offset: int = 0, sizelimit: int = 0, sector_size: int = 512,
               read_only: bool = False, partscan: bool = False) -> LoopDevice:
        flags = LO_FLAGS_AUTOCLEAR | (LO_FLAGS_READ_ONLY if read_only else 0) | (LO_FLAGS_PARTSCAN if partscan else 0)
        # direct I/O: writes to the image go once to its file, not through a second page cache that
        # the unmount then flushes by itself (the kernel falls back to buffered I/O where the backing
        # file system cannot do direct I/O, e.g. tmpfs)
        flags |= LO_FLAGS_DIRECT_IO if DIRECT_IO else 0
        backing = os.open(filename, os.O_RDONLY if read_only else os.O_RDWR)
        try:
            ctl = os.open("/dev/loop-control", os.O_RDWR)
            try:
                for _ in range(50):
                    num = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
                    path = f"/dev/loop{num}"
                    if not os.path.exists(path):
                        os.mknod(path, 0o660 | stat.S_IFBLK, os.makedev(7, num))
                    dev = os.open(path, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
                    cfg = struct.pack("II", backing, sector_size) + _info64(offset, sizelimit, flags, str(filename)) \
                        + struct.pack("8Q", *([0] * 8))
                    try:
                        fcntl.ioctl(dev, LOOP_CONFIGURE, cfg)
                    except OSError as e:
                        os.close(dev)
                        if e.errno == errno.EBUSY:  # taken by someone else between GET_FREE and CONFIGURE
                            time.sleep(0.05)
                            continue
                        if e.errno in (errno.EINVAL, errno.ENOTTY):  # kernel < 5.8: the old two-step way
                            dev = os.open(path, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
                            fcntl.ioctl(dev, LOOP_SET_FD, backing)
                            fcntl.ioctl(dev, LOOP_SET_STATUS64, _info64(offset, sizelimit, flags, str(filename)))
                        else:
                            raise
                    return cls(path, dev)
                raise OSError(errno.EBUSY, "no free loop device")
            finally:
                os.close(ctl)
        finally:
            os.close(backing)

    def detach(self) -> None:
        if self.fd < 0:
            return
        try:
            os.fsync(self.fd)
        except OSError:
            pass
        try:
            fcntl.ioctl(self.fd, LOOP_CLR_FD)
        except OSError:
            pass  # still in use (mounted): autoclear detaches it on the last close
        os.close(self.fd)
        self.fd = -1


def open_device(dtype: str, options: dict[str, Any], tree: Path, parent: LoopDevice | None) -> LoopDevice:
    if dtype != "org.osbuild.loopback":
        raise RuntimeError(f"device type {dtype} is not supported by osbuildd-engine")
    if parent is not None:
        raise RuntimeError("org.osbuild.loopback cannot have a parent device")
    filename = tree / options["filename"].lstrip("/")
    sector = int(options.get("sector-size", 512))
    return LoopDevice.attach(filename, offset=int(options.get("start", 0)) * sector,
                             sizelimit=int(options.get("size", 0) or 0) * sector, sector_size=sector,
                             read_only=bool(options.get("read-only", False)),
                             partscan=bool(options.get("partscan", False)))
