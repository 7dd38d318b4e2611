"""org.osbuild.chrony: NTP servers in the tree's chrony config (Debian: /etc/chrony/chrony.conf).

Existing ``server``/``pool`` lines (and ``leapsectz``/``refclock`` when given) are replaced."""

from __future__ import annotations

import os
from typing import Any

from osbuildd.engine.stageapi import StageArgs


def server_line(s: dict[str, Any]) -> str:
    line = f"server {s['hostname']}"
    for key in ("minpoll", "maxpoll"):
        if key in s:
            line += f" {key} {s[key]}"
    for flag in ("iburst", "prefer"):
        if s.get(flag, False):
            line += f" {flag}"
    return line


def main(args: StageArgs) -> int:
    o = args.options
    path = args.tree_path("/etc/chrony/chrony.conf")
    if not os.path.exists(path) and os.path.exists(args.tree_path("/etc/chrony.conf")):
        path = args.tree_path("/etc/chrony.conf")
    lines: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    drop = set()
    new: list[str] = []
    if "timeservers" in o or "servers" in o:
        drop |= {"server", "pool", "sourcedir"}
        new += [f"server {h} iburst" for h in o.get("timeservers", [])]
        new += [server_line(s) for s in o.get("servers", [])]
    if "leapsectz" in o:
        drop.add("leapsectz")
        if o["leapsectz"]:
            new.append(f"leapsectz {o['leapsectz']}")
    if "refclocks" in o:
        drop.add("refclock")
        for rc in o["refclocks"]:
            drv = rc["driver"]
            line = f"refclock {drv['name']} {drv.get('device') or drv.get('path') or drv.get('segment', '')}".rstrip()
            for key in ("poll", "dpoll", "offset"):
                if key in rc:
                    line += f" {key} {rc[key]}"
            new.append(line)
    kept = [ln for ln in lines if not (ln.split() and ln.split()[0] in drop)]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(new + kept) + "\n")
    print("\n".join(new))
    return 0
