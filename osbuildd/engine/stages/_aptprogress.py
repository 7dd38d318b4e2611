"""Step progress of an mmdebstrap/apt/dpkg run, read from its ``--verbose`` output.

mmdebstrap shows its own progress bar only on a terminal, so the stage runs it verbose and counts
what apt and dpkg print per package: ``Get:N`` (downloaded), ``Unpacking X`` and ``Setting up X``
(configured). Its extraction phase prints nothing per package; the stage feeds what it sees of it
(the ``dpkg-deb --fsys-tarfile`` processes, ``extracting_seen``). The counts of every phase add up
to one total (4 steps a package) that only grows, so a progress bar never runs backwards.
"""

from __future__ import annotations

import os
import re

PHASES = ("downloading", "extracting", "unpacking", "configuring")

# mmdebstrap's own status lines that start a phase
_PHASE_START = {
    "I: downloading packages with apt": "downloading",
    "I: extracting archives": "extracting",
    "I: installing essential packages": "unpacking",
    "I: installing remaining packages": "unpacking",
}
_GET = re.compile(r"^Get:\d+ \S+ .* \[[^\]]*\]$")
_UNPACK = re.compile(r"^Unpacking (\S+) ")
_SETUP = re.compile(r"^Setting up (\S+) ")


class AptProgress:
    """Counts packages per phase from lines of output; ``report()`` is (label, done, total)."""

    def __init__(self, packages: int) -> None:
        self.packages = max(1, packages)
        self.phase: str | None = None
        self.counts = dict.fromkeys(PHASES, 0)
        self._downloading = False
        self._seen: dict[str, set[str]] = {"unpacking": set(), "configuring": set()}

    def _enter(self, phase: str) -> None:
        # a later phase means the earlier ones are complete, whatever was missed of them
        idx = PHASES.index(phase)
        for earlier in PHASES[:idx]:
            self.counts[earlier] = self.packages
        if self.phase is None or PHASES.index(self.phase) <= idx:
            self.phase = phase

    def feed(self, line: str) -> bool:
        """One line of output (without its newline); True when the progress changed."""
        line = line.rstrip("\r\n")
        before = (self.phase, dict(self.counts))
        for prefix, phase in _PHASE_START.items():
            if line.startswith(prefix):
                self._downloading = phase == "downloading"
                self._enter(phase)
                break
        else:
            if self._downloading and _GET.match(line):
                self.counts["downloading"] = min(self.packages, self.counts["downloading"] + 1)
            elif m := _UNPACK.match(line):
                self._count("unpacking", m.group(1))
            elif m := _SETUP.match(line):
                self._downloading = False
                self._count("configuring", m.group(1))
        return (self.phase, self.counts) != before

    def _count(self, phase: str, package: str) -> None:
        seen = self._seen[phase]
        seen.add(package.split(":", 1)[0])
        self._enter(phase)
        # never down: a phase an earlier line already completed stays complete
        self.counts[phase] = max(self.counts[phase], min(self.packages, len(seen)))

    def arrived(self, debs: int) -> bool:
        """``debs`` package files of the input are there so far (the engine may still be fetching
        the rest): that is the downloading phase; True when that is news."""
        if self.phase not in (None, "downloading"):
            return False
        n = min(self.packages, debs)
        news = self.phase is None or n > self.counts["downloading"]
        self._enter("downloading")
        self.counts["downloading"] = max(self.counts["downloading"], n)
        return news

    def extracting_seen(self, debs: int) -> bool:
        """``debs`` archives were seen being extracted so far (polled); True when that is news."""
        if self.phase != "extracting":
            return False
        n = min(self.packages, debs)
        if n <= self.counts["extracting"]:
            return False
        self.counts["extracting"] = n
        return True

    def finish(self) -> None:
        for p in PHASES:
            self.counts[p] = self.packages
        self.phase = PHASES[-1]

    def report(self) -> tuple[str, int, int]:
        total = self.packages * len(PHASES)
        done = sum(self.counts.values())
        if self.phase is None:
            return "preparing", 0, total
        return f"{self.phase} {self.counts[self.phase]}/{self.packages}", done, total


def extracting_debs(proc: str = "/proc") -> set[str]:
    """The .deb files ``dpkg-deb --fsys-tarfile`` processes are reading right now."""
    found: set[str] = set()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if argv and os.path.basename(argv[0]) == b"dpkg-deb" and b"--fsys-tarfile" in argv:
            found.update(a.decode(errors="replace") for a in argv if a.endswith(b".deb"))
    return found
