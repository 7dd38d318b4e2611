"""org.osbuild.locale: LANG in /etc/locale.conf (systemd) and /etc/default/locale (Debian)."""

from __future__ import annotations

import os

from osbuildd.engine.stageapi import StageArgs


def main(args: StageArgs) -> int:
    lang = args.options["language"]
    for path in ("/etc/locale.conf", "/etc/default/locale"):
        root = args.tree_root()  # openat2 in the tree
        root.makedirs(os.path.dirname(path))
        root.write_text(path, f"LANG={lang}\n")
    print(f"LANG={lang}")
    return 0
