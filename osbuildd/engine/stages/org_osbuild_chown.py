"""org.osbuild.chown: change owners of paths in the tree; names are looked up in the tree's databases."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def lookup(tree: str, db: str, name: str | int) -> int:
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    with open(os.path.join(tree, "etc", db), encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name:
                return int(fields[2])
    raise KeyError(f"{name} not found in /etc/{db} of the tree")


def main(args: StageArgs) -> int:
    for path, item in args.options.get("items", {}).items():
        uid = lookup(args.tree, "passwd", item["user"]) if "user" in item else -1
        gid = lookup(args.tree, "group", item["group"]) if "group" in item else -1
        target = args.tree_path(path)
        os.lchown(target, uid, gid)
        if item.get("recursive", False):
            for root, dirs, files in os.walk(target):
                for n in dirs + files:
                    os.lchown(os.path.join(root, n), uid, gid)
        print(f"chown {uid}:{gid} {path}")
    return 0
