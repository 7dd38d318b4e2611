"""org.osbuild.modprobe: a modprobe.d configuration file."""

from __future__ import annotations

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    lines = []
    for c in args.options["commands"]:
        if c["command"] == "blacklist":
            lines.append(f"blacklist {c['modulename']}")
        else:
            lines.append(f"install {c['modulename']} {c['cmdline']}")
    root = args.tree_root()  # openat2 in the tree
    root.makedirs("/usr/lib/modprobe.d")
    root.write_text(f"/usr/lib/modprobe.d/{args.options['filename']}", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
