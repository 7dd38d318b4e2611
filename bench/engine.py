"""Engine vs a plain shell baseline: the same bootable Debian 12 qcow2, cold and warm.

1. Baseline (same run): a plain script — mmdebstrap (minbase + the image's packages, from the
   mirror, empty apt cache) -> configure (hostname, fstab, grub.cfg, GRUB module dirs) ->
   sfdisk on a sparse file -> mkfs.vfat + mtools for the ESP, `mkfs.ext4 -d` straight into the
   disk file -> GRUB BIOS+UEFI by hand -> qemu-img convert. It gets the same dpkg speed lever the
   engine uses (--dpkgopt=force-unsafe-io), so the ratio measures the engine, not the lever.
2. Engine cold: osbuildd-engine on the generated qcow2 manifest with an EMPTY store (the .debs
   are downloaded from the mirror too). Bar: <= 1.15x the baseline.
3. Engine warm rebuild: the same manifest again, same store (cached sources + checkpointed
   bootstrap and os tree). Bar: <= 0.35x the engine cold build.

Run as root: .venv/bin/python bench/engine.py   (about 5 minutes on 2 cores)
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# bench/ holds queue.py, which would shadow the stdlib module: put the repo there instead
sys.path[0] = str(REPO)

from osbuildd import distro  # noqa: E402
from osbuildd import manifest as mf  # noqa: E402
from osbuildd.depsolve import depsolve  # noqa: E402

BLUEPRINT = {"name": "bench", "version": "0.0.1", "customizations": {"hostname": "bench"}}
SEED = 2024

BASELINE = r"""
set -eu
W=$1; PKGS=$2; ROOT_UUID=$3
T=$W/tree
mmdebstrap --mode=root --variant=minbase --dpkgopt=force-unsafe-io --include="$PKGS" bookworm "$T" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://security.debian.org/debian-security bookworm-security main"
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
D=$W/disk.raw
truncate -s 4G $D
printf 'label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\nstart=4096, size=260096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=264192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' | sfdisk -q $D
ROOT_SECTORS=$(sfdisk -d $D | awk -F'size=' '/264192/{split($2,a,",");gsub(/ /,"",a[1]);print a[1]}')
printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n' $ROOT_UUID > $W/early.cfg
MODS="part_gpt part_msdos ext2 fat search search_fs_uuid configfile normal linux echo test serial terminal gzio"
grub-mkimage -O x86_64-efi -d $T/usr/lib/grub/x86_64-efi -o $W/BOOTX64.EFI -c $W/early.cfg -p /boot/grub $MODS efi_gop all_video
grub-mkimage -O i386-pc -d $T/usr/lib/grub/i386-pc -o $W/core.img -c $W/early.cfg -p /boot/grub $MODS biosdisk
mkfs.vfat -F 32 -i 7B7795E7 -C $W/esp.img 130048 >/dev/null
MTOOLS_SKIP_CHECK=1 mmd -i $W/esp.img ::/EFI ::/EFI/BOOT
MTOOLS_SKIP_CHECK=1 mcopy -i $W/esp.img $W/BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
dd if=$W/esp.img of=$D bs=512 seek=4096 conv=notrunc status=none
mkfs.ext4 -q -U $ROOT_UUID -d $T -E offset=$((264192*512)) $D $((ROOT_SECTORS/2))k
python3 - $T/usr/lib/grub/i386-pc/boot.img $W/core.img $D <<'EOF'
import struct, sys
boot = bytearray(open(sys.argv[1], "rb").read()); core = bytearray(open(sys.argv[2], "rb").read())
n = -(-len(core) // 512)
struct.pack_into("<QH", core, 0x1F4, 2049, n - 1)
struct.pack_into("<Q", boot, 0x5C, 2048); boot[0x66:0x68] = b"\x90\x90"
with open(sys.argv[3], "r+b") as f:
    f.write(boot[:440]); f.seek(2048 * 512); f.write(core)
EOF
qemu-img convert -f raw -O qcow2 -c $D $W/disk.qcow2
"""


def run_baseline(pkgs: list[str], work: Path) -> float:
    script = work / "baseline.sh"
    script.write_text(BASELINE)
    t = time.monotonic()
    subprocess.run(["bash", str(script), str(work), ",".join(pkgs), "6e4ff95f-f662-45ee-a82a-bdf44a2d0b75"],
                   check=True, stdout=subprocess.DEVNULL)
    elapsed = time.monotonic() - t
    assert (work / "disk.qcow2").stat().st_size > 100 << 20
    return elapsed


def run_engine(manifest: dict, store: Path, out: Path, exports: list[str], checkpoints: list[str]) -> float:
    cmd = [str(REPO / ".venv" / "bin" / "osbuildd-engine"), "--store", str(store), "--output-directory", str(out),
           "--json", "--cache-max-size", "unlimited", *sum((["--export", e] for e in exports), []),
           *sum((["--checkpoint", c] for c in checkpoints), []), "-"]
    t = time.monotonic()
    proc = subprocess.run(cmd, input=json.dumps(manifest).encode(), capture_output=True)
    elapsed = time.monotonic() - t
    result = json.loads(proc.stdout or b"{}")
    if not result.get("success"):
        raise SystemExit(f"engine build failed: {json.dumps(result)[-3000:]}\n{proc.stderr.decode()[-2000:]}")
    return elapsed


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


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench/engine.py needs root (mmdebstrap --mode=root, loop devices)")
    d = distro.get("debian-12")
    it = d.arch("x86_64").image_type("qcow2")
    state = Path(tempfile.mkdtemp(prefix="osbuildd-bench-engine-", dir="/var/tmp"))
    try:
        sets = mf.package_sets(d, "x86_64", it, BLUEPRINT)
        solved = asyncio.run(depsolve(d, "x86_64", sets, state / "cache"))
        res = mf.generate(d, "x86_64", it, BLUEPRINT, solved, SEED)
        names = sorted(p.name for p in solved["os"])
        print(f"Debian 12 qcow2: {len(names)} packages, "
              f"{sum(p.size for p in solved['os']) / 1e6:.0f} MB of .debs")

        # stage sandbox section: the per-stage start cost, and what it adds to a cold build
        per_stage = sandbox_start_ms()
        n_stages = count_stages(res.manifest)
        print(f"sandbox start: {per_stage:.1f} ms/stage (bar <= 20 ms); {n_stages} stages -> "
              f"{per_stage * n_stages / 1000:.2f} s per build")

        base_dir = state / "baseline"
        base_dir.mkdir()
        baseline = run_baseline(names, base_dir)
        shutil.rmtree(base_dir)
        print(f"baseline script (mmdebstrap -> mkfs.ext4 -d -> sfdisk/dd -> qemu-img): {baseline:7.1f} s")

        store = state / "store"
        cold = run_engine(res.manifest, store, state / "out-cold", res.exports, res.checkpoints)
        print(f"engine cold (empty store)                 : {cold:7.1f} s   ratio {cold / baseline:.2f}x "
              f"baseline (bar <= 1.15x)")
        shutil.rmtree(state / "out-cold")
        warm = run_engine(res.manifest, store, state / "out-warm", res.exports, res.checkpoints)
        print(f"engine warm rebuild (sources + checkpoints): {warm:7.1f} s   ratio {warm / cold:.2f}x "
              f"engine cold (bar <= 0.35x)")
    finally:
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
