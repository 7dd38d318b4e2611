"""org.osbuild.systemd.unit: a drop-in for an existing unit (/usr/lib/systemd/<kind>/<unit>.d/<dropin>)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    o = args.options
    kind = "user" if o.get("unit-type", "system") == "global" else "system"
    path = f"/usr/lib/systemd/{kind}/{o['unit']}.d/{o['dropin']}"
    root = args.tree_root()  # openat2 in the tree
    root.makedirs(os.path.dirname(path))
    out = []
    for section, values in o["config"].items():
        out.append(f"[{section}]")
        for key, val in values.items():
            if key == "Environment" and isinstance(val, list):
                out += [f'Environment="{e["key"]}={e["value"]}"' for e in val]
            elif isinstance(val, list):
                out += [f"{key}={v}" for v in val]
            else:
                out.append(f"{key}={val}")
        out.append("")
    root.write_text(path, "\n".join(out))
    print("\n".join(out))
    return 0
