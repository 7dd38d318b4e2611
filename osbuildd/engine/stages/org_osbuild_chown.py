"""org.osbuild.chown: change owners of paths in the tree; names are looked up in the tree's databases."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs, TreeRoot


def lookup(tree: str, db: str, name: str | int) -> int:
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    # read inside the tree: etc/passwd may be a symlink planted to a host file
    for line in TreeRoot(tree).read_text(f"/etc/{db}").splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise KeyError(f"{name} not found in /etc/{db} of the tree")


def main(args: StageArgs) -> int:
    for path, item in args.options.get("items", {}).items():
        uid = lookup(args.tree, "passwd", item["user"]) if "user" in item else -1
        gid = lookup(args.tree, "group", item["group"]) if "group" in item else -1
        root = args.tree_root()
        root.chown(path, uid, gid)  # a symlink is followed inside the tree only
        target = root.host_path(path)
        if item.get("recursive", False):
            # os.walk does not descend into symlinks and lchown does not follow them
            for top, dirs, files in os.walk(target):
                for n in dirs + files:
                    os.lchown(os.path.join(top, n), uid, gid)
        print(f"chown {uid}:{gid} {path}")
    return 0
