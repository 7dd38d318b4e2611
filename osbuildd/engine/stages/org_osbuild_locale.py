"""org.osbuild.locale: LANG in /etc/locale.conf (systemd) and /etc/default/locale (Debian)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    lang = args.options["language"]
    for path in ("/etc/locale.conf", "/etc/default/locale"):
        target = args.tree_path(path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            f.write(f"LANG={lang}\n")
    print(f"LANG={lang}")
    return 0
