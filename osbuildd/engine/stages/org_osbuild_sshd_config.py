"""org.osbuild.sshd.config: set sshd options; they go first in sshd_config (first match wins in sshd)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def value(v: object) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def main(args: StageArgs) -> int:
    config = args.options["config"]
    path = args.tree_path("/etc/ssh/sshd_config")
    lines: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    keys = {k.lower() for k in config}
    kept = [ln for ln in lines if not (ln.split() and ln.split()[0].lower() in keys)]
    new = [f"{k} {value(v)}" for k, v in config.items()]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(["# set by org.osbuild.sshd.config", *new, *kept]) + "\n")
    print("\n".join(new))
    return 0
