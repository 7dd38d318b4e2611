"""org.osbuild.cloud-init: a drop-in in /etc/cloud/cloud.cfg.d (written as JSON, which is YAML)."""

from __future__ import annotations

import json
import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    path = args.tree_path(f"/etc/cloud/cloud.cfg.d/{args.options['filename']}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(args.options["config"], f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}")
    return 0
