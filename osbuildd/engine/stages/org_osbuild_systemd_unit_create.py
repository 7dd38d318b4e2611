"""org.osbuild.systemd.unit.create: write a systemd unit file from sections of options."""

from __future__ import annotations

import os
from typing import Any

from osbuildd.engine.stageapi import StageArgs

ORDER = ("Unit", "Service", "Socket", "Mount", "Swap", "Install")


def render(config: dict[str, Any]) -> str:
    out = []
    for section in sorted(config, key=lambda s: ORDER.index(s) if s in ORDER else len(ORDER)):
        out.append(f"[{section}]")
        for key, val in config[section].items():
            for v in val if isinstance(val, list) else [val]:
                out.append(f"{key}={('true' if v else 'false') if isinstance(v, bool) else v}")
        out.append("")
    return "\n".join(out)


def main(args: StageArgs) -> int:
    o = args.options
    base = "/usr/lib/systemd" if o.get("unit-path", "usr") == "usr" else "/etc/systemd"
    kind = "user" if o.get("unit-type", "system") == "global" else "system"
    path = f"{base}/{kind}/{o['filename']}"
    root = args.tree_root()  # openat2 in the tree: a symlinked unit dir resolves inside it
    root.makedirs(os.path.dirname(path))
    text = render(o["config"])
    root.write_text(path, text)
    print(text)
    return 0
