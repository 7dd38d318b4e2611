"""org.osbuild.systemd.unit.create: write a systemd unit file from sections of options."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs

ORDER = ("Unit", "Service", "Socket", "Mount", "Swap", "Install")


def render(config: dict) -> str:
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
    path = args.tree_path(f"{base}/{kind}/{o['filename']}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = render(o["config"])
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    return 0
