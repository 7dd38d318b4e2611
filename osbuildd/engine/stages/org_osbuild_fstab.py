"""org.osbuild.fstab: write /etc/fstab."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    lines = []
    for fs in args.options["filesystems"]:
        if "uuid" in fs:
            src = f"UUID={fs['uuid']}"
        elif "label" in fs:
            src = f"LABEL={fs['label']}"
        elif "partlabel" in fs:
            src = f"PARTLABEL={fs['partlabel']}"
        else:
            src = fs["device"]
        lines.append(" ".join([src, fs["path"], fs.get("vfs_type", "none"), fs.get("options", "defaults"),
                               str(fs.get("freq", 0)), str(fs.get("passno", 0))]))
    args.tree_root().write_text("/etc/fstab", "\n".join(lines) + "\n")  # openat2 in the tree
    print("\n".join(lines))
    return 0
