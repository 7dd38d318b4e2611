"""Engine vs a plain shell baseline: the same bootable Debian 12 qcow2, cold, warm and after a change,
each stage timed (the engine's ``--json`` result ``timings``; phase markers in the baseline script).

1. Baseline (same run): a plain script — mmdebstrap (minbase + the image's packages, from the
   mirror, empty apt cache) -> configure (hostname, fstab, grub.cfg, GRUB module dirs) -> GRUB
   images -> sfdisk on a sparse file + mkfs.vfat/mtools for the ESP -> `mkfs.ext4 -d` straight into
   the disk file -> GRUB BIOS boot code -> qemu-img convert. It gets the same dpkg speed lever the
   engine uses (--dpkgopt=force-unsafe-io), so the ratio measures the engine, not the lever. Each
   phase writes a timestamped marker to a side file, printed as a table (mmdebstrap, configure,
   partition+esp, mkfs.ext4 -d, grub, qemu-img).
2. Engine cold: osbuildd-engine on the generated qcow2 manifest with an EMPTY store (the .debs
   are downloaded from the mirror too). Bar: <= 0.7x the baseline. Per-stage table.
3. Engine warm rebuild: the same manifest again, same store (cached sources + checkpointed
   bootstrap and os tree). Bar: <= 0.15x the engine cold build. Per-stage table.
4. Engine rebuild after a change: the blueprint's hostname differs (same store), so only the
   bootstrap checkpoint can be reused. Total, ratio to cold, per-stage table.
5. --tar: also the Debian 12 `tar` image type, cold (fresh store): total and per-stage table.
   --before REV (implies --tar): the engine of git revision REV (a `git worktree` in a temp dir, its
   `osbuildd-engine` entry point run from there with PYTHONPATH at it) builds the same qcow2 and tar
   manifests cold (fresh stores) in the same run: before/after ratios.
   --tar-only: step 5 alone (a quick check of the bench itself).

Run as root: .venv/bin/python bench/engine.py [--tar] [--before REV]   (about 8 minutes on 2 cores;
--tar and each --before build add a cold build)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# bench/ holds queue.py, which would shadow the stdlib module: put the repo there instead
sys.path[0] = str(REPO)

from osbuildd import distro  # noqa: E402
from osbuildd import manifest as mf  # noqa: E402
from osbuildd.depsolve import depsolve  # noqa: E402
from osbuildd.runner.timings import table as stage_table  # noqa: E402

BLUEPRINT = {"name": "bench", "version": "0.0.1", "customizations": {"hostname": "bench"}}
CHANGED = {**BLUEPRINT, "customizations": {"hostname": "bench-changed"}}
SEED = 2024
COLD_BAR = 0.7    # engine cold <= 0.7x the baseline
WARM_BAR = 0.15   # engine warm <= 0.15x the engine cold build

BASELINE = r"""
set -eu
W=$1; PKGS=$2; ROOT_UUID=$3
T=$W/tree
# phase markers: "<name> <unix time>" lines in a side file (a phase lasts until the next marker)
phase() { echo "$1 $(date +%s.%N)" >> "$W/phases"; }
phase mmdebstrap
mmdebstrap --mode=root --variant=minbase --dpkgopt=force-unsafe-io --include="$PKGS" bookworm "$T" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://security.debian.org/debian-security bookworm-security main"
phase configure
echo bench > $T/etc/hostname
printf 'UUID=%s / ext4 errors=remount-ro 0 1\nUUID=7B77-95E7 /boot/efi vfat umask=0077 0 2\n' $ROOT_UUID > $T/etc/fstab
mkdir -p $T/boot/efi $T/boot/grub
cp -a $T/usr/lib/grub/i386-pc $T/usr/lib/grub/x86_64-efi $T/boot/grub/
KVER=$(ls $T/lib/modules | sort -V | tail -1)
cat > $T/boot/grub/grub.cfg <<EOF
set timeout=1
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
search --no-floppy --fs-uuid --set=root $ROOT_UUID
menuentry 'Debian' {
  insmod gzio
  linux /boot/vmlinuz-$KVER root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8
  initrd /boot/initrd.img-$KVER
}
EOF
: > $T/etc/machine-id
phase grub
printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n' $ROOT_UUID > $W/early.cfg
MODS="part_gpt part_msdos ext2 fat search search_fs_uuid configfile normal linux echo test serial terminal gzio"
grub-mkimage -O x86_64-efi -d $T/usr/lib/grub/x86_64-efi -o $W/BOOTX64.EFI -c $W/early.cfg -p /boot/grub $MODS efi_gop all_video
grub-mkimage -O i386-pc -d $T/usr/lib/grub/i386-pc -o $W/core.img -c $W/early.cfg -p /boot/grub $MODS biosdisk
phase partition+esp
D=$W/disk.raw
truncate -s 4G $D
printf 'label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\nstart=4096, size=260096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=264192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q $D
ROOT_SECTORS=$(sfdisk -d $D | awk -F'size=' '/264192/{split($2,a,",");gsub(/ /,"",a[1]);print a[1]}')
mkfs.vfat -F 32 -i 7B7795E7 -C $W/esp.img 130048 >/dev/null
MTOOLS_SKIP_CHECK=1 mmd -i $W/esp.img ::/EFI ::/EFI/BOOT
MTOOLS_SKIP_CHECK=1 mcopy -i $W/esp.img $W/BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
dd if=$W/esp.img of=$D bs=512 seek=4096 conv=notrunc status=none
phase "mkfs.ext4 -d"
mkfs.ext4 -q -U $ROOT_UUID -d $T -E offset=$((264192*512)) $D $((ROOT_SECTORS/2))k
phase grub
python3 - $T/usr/lib/grub/i386-pc/boot.img $W/core.img $D <<'EOF'
import struct, sys
boot = bytearray(open(sys.argv[1], "rb").read()); core = bytearray(open(sys.argv[2], "rb").read())
n = -(-len(core) // 512)
struct.pack_into("<QH", core, 0x1F4, 2049, n - 1)
struct.pack_into("<Q", boot, 0x5C, 2048); boot[0x66:0x68] = b"\x90\x90"
with open(sys.argv[3], "r+b") as f:
    f.write(boot[:440]); f.seek(2048 * 512); f.write(core)
EOF
phase qemu-img
qemu-img convert -f raw -O qcow2 -c $D $W/disk.qcow2
phase end
"""
PHASES = ("mmdebstrap", "configure", "partition+esp", "mkfs.ext4 -d", "grub", "qemu-img")


# --- tables (pure functions: checkable on saved markers and results) ---
def read_phases(text: str) -> list[tuple[str, float]]:
    """The markers the baseline wrote, in order: (phase, unix time); the last one is "end"."""
    out = []
    for line in text.splitlines():
        name, _, stamp = line.rpartition(" ")
        if name:
            out.append((name, float(stamp)))
    return out


def phase_durations(marks: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Seconds per phase: a phase lasts until the next marker; a phase named twice is summed."""
    out: dict[str, float] = {}
    for (name, t0), (_, t1) in zip(marks, marks[1:], strict=False):
        out[name] = out.get(name, 0.0) + (t1 - t0)
    return out


def phase_table(marks: Sequence[tuple[str, float]]) -> list[str]:
    """Lines: phase, seconds, share of the time from the first marker to the last; the total last."""
    durations = phase_durations(marks)
    total = marks[-1][1] - marks[0][1] if len(marks) > 1 else 0.0
    names = [n for n in PHASES if n in durations] + [n for n in durations if n not in PHASES]
    w = max([len("phase"), *(len(n) for n in names)])
    lines = [f"{'phase':<{w}}  {'seconds':>8}  {'share':>6}"]
    for n in names:
        share = f"{100 * durations[n] / total:5.1f}%" if total > 0 else "-"
        lines.append(f"{n:<{w}}  {durations[n]:8.1f}  {share:>6}")
    lines.append(f"{'total':<{w}}  {total:8.1f}  {'100.0%':>6}")
    return lines


def engine_lines(result: dict[str, Any], elapsed: float) -> list[str]:
    """The per-stage table of a build from its result's ``timings`` (an engine without them: a note)."""
    t = result.get("timings")
    if not isinstance(t, dict) or not isinstance(t.get("stages"), list):
        return [f"(no per-stage timings in this engine's result; {elapsed:.1f} s in all)"]
    return stage_table(t)


def indent(lines: list[str]) -> str:
    return "\n".join("    " + line for line in lines)


def bar(ratio: float, limit: float) -> str:
    return f"(bar <= {limit:g}x: {'met' if ratio <= limit else 'MISSED'})"


# --- runs ---
def run_baseline(pkgs: list[str], work: Path) -> tuple[float, list[tuple[str, float]]]:
    """(seconds, phase markers) of the baseline script."""
    script = work / "baseline.sh"
    script.write_text(BASELINE)
    t = time.monotonic()
    subprocess.run(["bash", str(script), str(work), ",".join(pkgs), "6e4ff95f-f662-45ee-a82a-bdf44a2d0b75"],
                   check=True, stdout=subprocess.DEVNULL)
    elapsed = time.monotonic() - t
    assert (work / "disk.qcow2").stat().st_size > 100 << 20
    return elapsed, read_phases((work / "phases").read_text())


@dataclass
class Engine:
    """How to run one engine: this tree's, or a worktree's (``--before``)."""

    argv: list[str]
    label: str = "engine"
    cwd: Path | None = None
    env: dict[str, str] | None = None


THIS = Engine([str(REPO / ".venv" / "bin" / "osbuildd-engine")])


def run_engine(manifest: dict[str, Any], store: Path, out: Path, exports: list[str], checkpoints: list[str],
               engine: Engine = THIS) -> tuple[float, dict[str, Any]]:
    """(seconds, the --json result) of one build; its output directory is removed after it."""
    cmd = [*engine.argv, "--store", str(store), "--output-directory", str(out),
           "--json", "--cache-max-size", "unlimited", *sum((["--export", e] for e in exports), []),
           *sum((["--checkpoint", c] for c in checkpoints), []), "-"]
    t = time.monotonic()
    proc = subprocess.run(cmd, input=json.dumps(manifest).encode(), capture_output=True, cwd=engine.cwd,
                          env=engine.env)
    elapsed = time.monotonic() - t
    result = json.loads(proc.stdout or b"{}")
    if not result.get("success"):
        raise SystemExit(f"{engine.label} build failed: {json.dumps(result)[-3000:]}\n{proc.stderr.decode()[-2000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return elapsed, result


def old_engine(rev: str, tmp: Path) -> Engine:
    """A worktree of ``rev`` and its engine, by the entry point its pyproject.toml names."""
    tree = tmp / "worktree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev], check=True,
                   stdout=subprocess.DEVNULL)
    m = re.search(r'^osbuildd-engine\s*=\s*"([\w.]+):main"', (tree / "pyproject.toml").read_text(), re.M)
    module = m.group(1) if m else "osbuildd.engine.cli"
    python = str(REPO / ".venv" / "bin" / "python")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    where = subprocess.run([python, "-c", "import osbuildd; print(osbuildd.__file__)"], cwd=tree, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not where.startswith(str(tree)):   # the venv's editable install must not win over PYTHONPATH
        raise SystemExit(f"--before {rev}: osbuildd comes from {where}, not from the worktree {tree}")
    return Engine([python, "-m", module], f"engine of {rev}", tree, env)


def remove_worktree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def generate(image_type: str, blueprint: dict[str, Any], cache: Path) -> tuple[Any, dict[str, Any]]:
    d = distro.get("debian-12")
    it = d.arch("x86_64").image_type(image_type)
    sets = mf.package_sets(d, "x86_64", it, blueprint)
    solved = asyncio.run(depsolve(d, "x86_64", sets, cache))
    return mf.generate(d, "x86_64", it, blueprint, solved, SEED), solved


def report(what: str, seconds: float, result: dict[str, Any], ratio: str = "") -> None:
    print(f"{what:<58}: {seconds:7.1f} s" + (f"   {ratio}" if ratio else ""))
    print(indent(engine_lines(result, seconds)))


def cold_before(res: Any, state: Path, old: Engine, what: str, now: float) -> None:
    """The old engine on the same manifest, cold (its own fresh store)."""
    store = state / "store-before"
    t, result = run_engine(res.manifest, store, state / "out", res.exports, res.checkpoints, engine=old)
    shutil.rmtree(store, ignore_errors=True)
    report(f"{old.label}: {what}", t, result, f"now/before {now / t:.2f}x")


def qcow2_runs(state: Path, old: Engine | None) -> None:
    """Baseline, engine cold / warm / hostname changed, and the old engine cold."""
    res, solved = generate("qcow2", BLUEPRINT, state / "cache")
    names = sorted(p.name for p in solved["os"])
    print(f"Debian 12 qcow2: {len(names)} packages, {sum(p.size for p in solved['os']) / 1e6:.0f} MB of .debs")

    # stage sandbox section: the per-stage start cost, and what it adds to a cold build
    per_stage = sandbox_start_ms()
    n_stages = count_stages(res.manifest)
    print(f"sandbox start: {per_stage:.1f} ms/stage (bar <= 20 ms); {n_stages} stages -> "
          f"{per_stage * n_stages / 1000:.2f} s per build")

    base_dir = state / "baseline"
    base_dir.mkdir()
    baseline, marks = run_baseline(names, base_dir)
    shutil.rmtree(base_dir)
    print(f"{'baseline script (mmdebstrap -> mkfs.ext4 -d -> sfdisk/dd -> qemu-img)':<58}: {baseline:7.1f} s")
    print(indent(phase_table(marks)))

    store = state / "store"
    cold, result = run_engine(res.manifest, store, state / "out", res.exports, res.checkpoints)
    report("engine cold (empty store)", cold, result,
           f"ratio {cold / baseline:.2f}x baseline {bar(cold / baseline, COLD_BAR)}")
    warm, result = run_engine(res.manifest, store, state / "out", res.exports, res.checkpoints)
    report("engine warm rebuild (sources + checkpoints)", warm, result,
           f"ratio {warm / cold:.2f}x engine cold {bar(warm / cold, WARM_BAR)}")
    changed, _ = generate("qcow2", CHANGED, state / "cache")
    again, result = run_engine(changed.manifest, store, state / "out", changed.exports, changed.checkpoints)
    report("engine rebuild, hostname changed (bootstrap checkpoint)", again, result,
           f"ratio {again / cold:.2f}x engine cold")
    shutil.rmtree(store, ignore_errors=True)
    if old is not None:
        cold_before(res, state, old, "qcow2 cold (empty store)", cold)


def tar_runs(state: Path, old: Engine | None) -> None:
    res, solved = generate("tar", BLUEPRINT, state / "cache")
    print(f"Debian 12 tar: {len(solved['os'])} packages")
    store = state / "store-tar"
    t, result = run_engine(res.manifest, store, state / "out", res.exports, res.checkpoints)
    shutil.rmtree(store, ignore_errors=True)
    report("engine tar cold (empty store)", t, result)
    if old is not None:
        cold_before(res, state, old, "tar cold (empty store)", t)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Engine vs a plain shell baseline, per stage (see the module doc).")
    ap.add_argument("--tar", action="store_true", help="also build the Debian 12 tar image type cold")
    ap.add_argument("--tar-only", action="store_true", help="only the tar build (a quick check of the bench)")
    ap.add_argument("--before", metavar="REV", help="also the engine of git revision REV, cold (implies --tar)")
    args = ap.parse_args(argv)
    args.tar = args.tar or args.tar_only or bool(args.before)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench/engine.py needs root (mmdebstrap --mode=root, loop devices)")
    state = Path(tempfile.mkdtemp(prefix="osbuildd-bench-engine-", dir="/var/tmp"))
    old = None
    try:
        if args.before:
            old = old_engine(args.before, state)
        if not args.tar_only:
            qcow2_runs(state, old)
        if args.tar:
            tar_runs(state, old)
    finally:
        if old is not None and old.cwd is not None:
            remove_worktree(old.cwd)
        shutil.rmtree(state, ignore_errors=True)


# --- stage sandbox start cost (owned by the stage-sandbox work; osbuildd/engine/bwrap.py) ---
def sandbox_start_ms(rounds: int = 40) -> float:
    """Mean extra wall time of starting /bin/true through the stage sandbox's argv over a direct start."""
    from osbuildd.engine import bwrap

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        dirs = {d: Path(tmp) / d for d in ("tree", "api", "mounts", "input")}
        for d in dirs.values():
            d.mkdir()
        box = bwrap.Sandbox(root=None, tree=dirs["tree"], api=dirs["api"], mounts=dirs["mounts"],
                            inputs={"in": dirs["input"]})
        argv = box.argv(bwrap.require())

        def mean(cmd: list[str]) -> float:
            subprocess.run(cmd, check=True)  # warm the page cache
            start = time.perf_counter()
            for _ in range(rounds):
                subprocess.run(cmd, check=True)
            return (time.perf_counter() - start) / rounds

        return max(0.0, mean([*argv, "/bin/true"]) - mean(["/bin/true"])) * 1000


def count_stages(manifest: dict) -> int:
    return sum(len(p.get("stages", [])) for p in manifest["pipelines"])
# --- end of the stage sandbox section ---


if __name__ == "__main__":
    main()
