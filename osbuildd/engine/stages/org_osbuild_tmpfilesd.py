"""org.osbuild.tmpfilesd: a tmpfiles.d(5) configuration file in /usr/lib/tmpfiles.d."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    lines = []
    for c in args.options["config"]:
        fields = [c["type"], c["path"]] + [c.get(k, "-") for k in ("mode", "user", "group", "age")]
        if "argument" in c:
            fields.append(c["argument"])
        lines.append(" ".join(fields))
    path = f"/usr/lib/tmpfiles.d/{args.options['filename']}"
    root = args.tree_root()  # openat2 in the tree
    root.makedirs(os.path.dirname(path))
    root.write_text(path, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
