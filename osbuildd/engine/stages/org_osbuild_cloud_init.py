"""org.osbuild.cloud-init: a drop-in in /etc/cloud/cloud.cfg.d (written as JSON, which is YAML)."""

from __future__ import annotations

import json

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    path = f"/etc/cloud/cloud.cfg.d/{args.options['filename']}"
    root = args.tree_root()  # openat2 in the tree
    root.makedirs("/etc/cloud/cloud.cfg.d")
    root.write_text(path, json.dumps(args.options["config"], indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")
    return 0
